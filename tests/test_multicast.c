/*
 * udp:// publish/subscribe over multicast, on the loopback interface
 * (docs/pubsub.md).  As root the test first moves into a network namespace
 * of its own and brings its lo up (nothing else sees its groups); without
 * that it uses the machine's lo.  If the kernel does not deliver an IPv4
 * group on lo, the delivery test skips saying so; likewise for an IPv6
 * group (ff02::/16, link-local), which Linux refuses on lo: lo has no
 * ff00::/8 route, and one added by hand becomes a reject route (a true
 * route through loopback would loop), so the publisher's connect or send
 * says -ENETUNREACH.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#define NSUB  2
#define WANT  10 /* distinct messages each subscriber must see */
#define MSGSZ 32

static char group_uri[128];  /* IPv4 */
static char group6_uri[128]; /* IPv6 */
static const char *cur_uri;  /* what the subscribers join */

static int
lo_up(void)
{
	struct ifreq ifr = {0};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int r = -1;

	if (fd < 0) {
		return -1;
	}
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		r = ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	close(fd);
	return r;
}

static int
setup(void **state)
{
	int port;

	(void)state;
	if (unshare(CLONE_NEWNET) == 0 && lo_up() == 0) {
		printf("in a network namespace of its own, lo up\n");
	} else {
		printf("no network namespace of its own (%s): the machine's "
		       "lo\n",
		       strerror(errno));
	}
	if (tu_free_port("127.0.0.1", &port) != 0) {
		return -1;
	}
	snprintf(group_uri, sizeof group_uri,
	         "udp://239.255.%d.%d:%d?iface=lo", (int)(getpid() >> 8) & 255,
	         (int)getpid() & 255, port);
	printf("group: %s\n", group_uri);
	/* The port is only a number for the group: free on ::1 or not. */
	if (tu_free_port("::1", &port) != 0 &&
	    tu_free_port("127.0.0.1", &port) != 0) {
		return -1;
	}
	snprintf(group6_uri, sizeof group6_uri,
	         "udp://[ff02::1:%x]:%d?iface=lo", (unsigned)getpid() & 0xffff,
	         port);
	printf("IPv6 group: %s\n", group6_uri);
	return 0;
}

static void
expect_err(int r, int want, const char *words)
{
	printf("-> %d: %s\n", r, ipc_last_error());
	assert_int_equal(r, want);
	assert_non_null(strstr(ipc_last_error(), words));
}

/* What the roles allow and refuse on a group. */
static void
t_rules(void **state)
{
	ipc_channel *pub, *sub, *ch = NULL;
	char uri[160];

	(void)state;
	assert_int_equal(ipc_open(&pub, group_uri, IPC_PUBLISH), 0);
	assert_int_equal(ipc_open(&sub, group_uri, IPC_SUBSCRIBE), 0);
	assert_true(ipc_caps(pub) & IPC_CAP_PUBSUB);
	assert_false(ipc_caps(sub) & IPC_CAP_RELIABLE);
	expect_err(ipc_subscribers(pub), -EOPNOTSUPP, "not known");
	expect_err((int)ipc_send(sub, "x", 1, 0), -EOPNOTSUPP, "subscribes");
	char b[8];
	expect_err((int)ipc_recv(pub, b, sizeof b, 0), -EOPNOTSUPP,
	           "publishes");
	assert_int_equal(ipc_close(sub), 0);
	assert_int_equal(ipc_close(pub), 0);
	expect_err(ipc_open(&ch, "udp://127.0.0.1:9?iface=lo", IPC_PUBLISH),
	           -EINVAL, "multicast group");
	snprintf(uri, sizeof uri, "%s", group_uri);
	*strstr(uri, "?") = '\0';
	strcat(uri, "?iface=nosuchif0");
	expect_err(ipc_open(&ch, uri, IPC_SUBSCRIBE), -ENODEV,
	           "no such interface");
	expect_err(ipc_open(&ch, "udp://127.0.0.1:9?ttl=3", IPC_CREATE),
	           -EINVAL, "multicast");
	expect_err(ipc_open(&ch, "udp://[ff02::1:3]:9", IPC_SUBSCRIBE),
	           -EINVAL, "needs iface=");
	expect_err(ipc_open(&ch, "udp://[ff01::1:3]:9", IPC_PUBLISH), -EINVAL,
	           "needs iface=");
	assert_null(ch);
}

static int
subscriber(void *arg)
{
	int ready = *(int *)arg;
	ipc_channel *s;
	unsigned char seen[4096] = {0};
	char buf[MSGSZ + 1];
	int distinct = 0;

	TU_OK(ipc_open(&s, cur_uri, IPC_SUBSCRIBE));
	TU_OK(ipc_set_timeout(s, (int)(20000 * tu_time_factor())));
	TU_CHECK(write(ready, "r", 1) == 1);
	while (distinct < WANT) {
		ssize_t r = TU_OK(ipc_recv(s, buf, sizeof buf - 1, 0));
		unsigned i;
		buf[r] = '\0';
		TU_CHECK_MSG(r == MSGSZ && sscanf(buf, "m%u.", &i) == 1 &&
		                     i < sizeof seen,
		             "a datagram that was not sent: %zd \"%s\"", r,
		             buf);
		if (!seen[i]) {
			seen[i] = 1;
			distinct++;
		}
	}
	TU_OK(ipc_close(s));
	return 0;
}

static void
end_kids(pid_t *kids)
{
	int status;

	for (int k = 0; k < NSUB; k++) {
		if (kids[k] > 0) {
			kill(kids[k], SIGKILL);
			tu_wait(kids[k], -1, &status);
		}
	}
}

/* Every subscriber of the group receives what the publisher sends (as
 * datagrams: the publisher repeats until each has seen WANT of them). */
static void
delivery(const char *uri, const char *family)
{
	int ready[2];
	pid_t kids[NSUB];
	ipc_channel *pub;

	cur_uri = uri;
	printf("%s: %s\n", family, uri);
	assert_int_equal(pipe(ready), 0);
	for (int k = 0; k < NSUB; k++) {
		kids[k] = tu_fork(subscriber, &ready[1], 60);
		assert_true(kids[k] > 0);
	}
	for (int k = 0; k < NSUB; k++) {
		char c;
		assert_int_equal(read(ready[0], &c, 1), 1);
	}
	close(ready[0]);
	close(ready[1]);
	int o = ipc_open(&pub, uri, IPC_PUBLISH);
	if (o == -ENETUNREACH) {
		/* IPv6 on Linux: no route to the group through lo. */
		printf("SKIP: this kernel refuses %s multicast on lo: %s\n",
		       family, ipc_last_error());
		end_kids(kids);
		skip();
	}
	assert_int_equal(o, 0);
	double end = tu_now() + 30 * tu_time_factor();
	int left = NSUB, sent = 0, status;
	while (left > 0 && tu_now() < end) {
		char m[MSGSZ + 1];
		memset(m, '.', MSGSZ);
		int h = snprintf(m, sizeof m, "m%u.", (unsigned)(sent % 4096));
		m[h] = '.'; /* the rest stays dots, MSGSZ bytes in all */
		ssize_t r = ipc_send(pub, m, MSGSZ, 0);
		if (r == -ENETUNREACH || r == -ENODEV) {
			printf("SKIP: this kernel has no %s multicast route "
			       "on lo (%s)\n",
			       family, ipc_last_error());
			ipc_close(pub);
			end_kids(kids);
			skip();
		}
		assert_int_equal(r, MSGSZ);
		sent++;
		tu_sleep_ms(2); /* pacing, so that receive queues keep up */
		for (int k = 0; k < NSUB; k++) {
			if (kids[k] > 0 && tu_wait(kids[k], 0, &status) == 0) {
				assert_true(WIFEXITED(status) &&
				            WEXITSTATUS(status) == 0);
				kids[k] = 0;
				left--;
			}
		}
	}
	printf("%s: %d datagrams sent until %d subscribers saw %d each\n",
	       family, sent, NSUB, WANT);
	assert_int_equal(left, 0);
	assert_int_equal(ipc_dropped(pub), 0);
	assert_int_equal(ipc_close(pub), 0);
	for (int k = 0; k < NSUB; k++) {
		if (kids[k] > 0) {
			assert_int_equal(tu_wait_ok(kids[k], 1000), 0);
		}
	}
}

static void
t_delivery(void **state)
{
	(void)state;
	delivery(group_uri, "IPv4");
}

/* The same over IPv6: a link-local group joined on lo. */
static void
t_delivery6(void **state)
{
	(void)state;
	delivery(group6_uri, "IPv6");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(t_rules),
	        cmocka_unit_test(t_delivery),
	        cmocka_unit_test(t_delivery6),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
