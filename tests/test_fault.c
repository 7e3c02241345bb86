/*
 * Fault injection (issue 7 item 3) over one URI template:
 *
 *   test_fault TEMPLATE     (%s a unique name, %d a fresh directory,
 *                            pair:URI for ipc_pair)
 *
 * A scenario opens a channel (the creator here, the peer in a thread),
 * sends a short message one way and a long one back, and closes both
 * ends.  A first run counts the system calls the library makes
 * (core/fault.h: every call of src/core and src/backends goes through one
 * indirection in this test's copy of the library) and the faults that
 * are plausible at each call site.  Then, for every site and every
 * plausible fault, a child process runs the scenario with that one fault
 * injected at the site's next call and checks the contract:
 *
 * - no crash, no hang (a fault that the other side cannot see costs at
 *   most the scenario's deadline);
 * - EINTR, EAGAIN and short transfers never reach the caller (the core
 *   retries and waits): the scenario succeeds;
 * - any other fault either is absorbed or fails the call with a negative
 *   errno and an ipc_last_error() that names the URI; the failed step is
 *   tried once more, and then the channel works or fails cleanly;
 * - every message received is whole and right (no partial message);
 * - after both ends are closed: the same descriptors as before, the same
 *   bytes of heap in use, and no new object (/dev/shm, /dev/mqueue, System
 *   V in a private IPC namespace, files and sockets in the directory).
 *
 * It prints how many call sites and faults were exercised, and each
 * failure with the call site (file:line from addr2line where it can).
 *
 * SPDX-License-Identifier: MIT
 */
#include <dlfcn.h>
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h> /* mallinfo2 */
#endif
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "core/fault.h"
#include "ipc/ipc.h"
#include "testutil.h"

#define MAX_SITES 1024
#define BIG       20000 /* above a pipe's atomic write and mq's message size */

static const char *g_tmpl;
static int g_heap = 1; /* compare the heap in use (see main) */
static char g_dir[128];
static char g_token[64];

/* What a child reports through shared memory. */
struct report {
	int fired;
	int failed;
	char msg[768];
};

struct shared {
	size_t nsites;
	struct ipc_fault_site sites[MAX_SITES];
	struct report rep;
};
static struct shared *g_sh;

static void
report_fail(const char *fmt, ...)
{
	struct report *r = &g_sh->rep;
	if (r->failed) {
		return; /* the first failure is the one that counts */
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof r->msg, fmt, ap);
	va_end(ap);
	r->failed = 1;
}

/* ------------------------------------------------------------ scenario -- */

struct run {
	char uri[300];
	char peer_uri[300];
	int pair;
	ipc_channel *a, *b;
	atomic_int stop; /* a side gave up: the other stops waiting */
	int deadline_ms;
	int a_ok, b_ok; /* each side's steps all succeeded */
	unsigned char big[BIG];
	size_t bigsz;
};

/* An error as the contract wants it: a negative errno, -EINTR never,
 * and a text that starts with the scheme of the URI and says why. */
static void
check_error(struct run *r, const char *step, long long rc)
{
	const char *t = ipc_last_error();
	const char *u = r->uri;
	size_t sl = strcspn(u, ":");

	if (rc >= 0 || rc < -4095) {
		report_fail("%s: %lld is not a negative errno", step, rc);
	} else if (rc == -EINTR) {
		report_fail("%s: -EINTR reached the caller (\"%s\")", step, t);
	} else if (t == NULL || strncmp(t, u, sl) != 0 ||
	           strstr(t, ": ") == NULL) {
		report_fail("%s: %s with the text \"%s\", which does not name "
		            "the URI",
		            step, tu_errname((int)rc), t ? t : "(null)");
	}
}

/* Waits for a message of len bytes equal to want, in slices so that the
 * other side's giving up is seen.  1 received, 0 gave up, <0 an error. */
static long long
recv_msg(struct run *r, ipc_channel *ch, const void *want, size_t len,
         const char *step)
{
	static __thread unsigned char buf[BIG + 64];
	double end = tu_now() + r->deadline_ms / 1000.0;

	ipc_set_timeout(ch, 100);
	for (;;) {
		long long n = ipc_recv(ch, buf, sizeof buf, 0);
		if (n == (long long)len && memcmp(buf, want, len) == 0) {
			return 1;
		}
		if (n >= 0) {
			report_fail("%s: received %lld bytes that are not the "
			            "message sent (%zu bytes)",
			            step, n, len);
			return -EPROTO;
		}
		if (n != -ETIMEDOUT) {
			return n;
		}
		if (atomic_load(&r->stop)) {
			return 0;
		}
		if (tu_now() > end) {
			report_fail("%s: no message after %d ms (lost?)", step,
			            r->deadline_ms);
			return 0;
		}
	}
}

/* One step, tried twice: a fault fires once, so the second try shows
 * whether the channel still works.  Returns whether it succeeded. */
#define STEP(r, name, expr)                                                   \
	({                                                                    \
		long long rc_ = (expr);                                       \
		if (rc_ < 0) {                                                \
			check_error(r, name, rc_);                            \
			rc_ = (expr);                                         \
			if (rc_ < 0) {                                        \
				check_error(r, name " (again)", rc_);         \
			}                                                     \
		}                                                             \
		rc_ >= 0;                                                     \
	})

static int
open_peer(struct run *r)
{
	return ipc_open(&r->b, r->peer_uri, 0);
}

static void *
side_b(void *arg)
{
	struct run *r = arg;

	if (!r->pair && !STEP(r, "peer open", open_peer(r))) {
		r->b = NULL;
		goto out;
	}
	ipc_set_timeout(r->b, r->deadline_ms);
	if (!STEP(r, "peer send", ipc_send(r->b, "hello", 5, 0))) {
		goto out;
	}
	long long got = recv_msg(r, r->b, r->big, r->bigsz, "peer recv");
	if (got < 0) {
		check_error(r, "peer recv", got);
		got = recv_msg(r, r->b, r->big, r->bigsz, "peer recv (again)");
		if (got < 0) {
			check_error(r, "peer recv (again)", got);
		}
	}
	r->b_ok = got == 1;
out:
	atomic_store(&r->stop, 1);
	if (r->b != NULL) {
		ipc_close(r->b);
		r->b = NULL;
	}
	return NULL;
}

static int
open_creator(struct run *r)
{
	if (r->pair) {
		return ipc_pair(&r->a, &r->b, r->uri);
	}
	int rc = ipc_open(&r->a, r->uri, IPC_CREATE);
	if (rc < 0) {
		return rc;
	}
	const char *lu = ipc_local_uri(r->a);
	if (lu == NULL) {
		ipc_close(r->a);
		r->a = NULL;
		return -ENOMEM; /* checked by its text below */
	}
	snprintf(r->peer_uri, sizeof r->peer_uri, "%s", lu);
	return 0;
}

/* The whole scenario; returns whether every step succeeded. */
static int
scenario(struct run *r)
{
	pthread_t th;

	atomic_store(&r->stop, 0);
	r->a = r->b = NULL;
	r->a_ok = r->b_ok = 0;
	if (!STEP(r, "open", open_creator(r))) {
		return 0;
	}
	ipc_set_timeout(r->a, r->deadline_ms);
	r->bigsz = ipc_max_msg(r->a) < BIG ? ipc_max_msg(r->a) : BIG;
	if (pthread_create(&th, NULL, side_b, r) != 0) {
		report_fail("pthread_create failed");
		ipc_close(r->a);
		return 0;
	}
	long long got = recv_msg(r, r->a, "hello", 5, "recv");
	if (got < 0) {
		check_error(r, "recv", got);
		got = recv_msg(r, r->a, "hello", 5, "recv (again)");
		if (got < 0) {
			check_error(r, "recv (again)", got);
		}
	}
	if (got == 1) {
		ipc_set_timeout(r->a, r->deadline_ms);
		r->a_ok = STEP(r, "send", ipc_send(r->a, r->big, r->bigsz, 0));
	}
	if (!r->a_ok) {
		atomic_store(&r->stop, 1);
	}
	pthread_join(th, NULL);
	ipc_close(r->a);
	r->a = NULL;
	return r->a_ok && r->b_ok;
}

/* ------------------------------------------------------------- children -- */

/* The template with a unique name and a fresh directory for child n. */
static void
expand(char *out, size_t n, int child)
{
	char sub[200], name[100];

	snprintf(sub, sizeof sub, "%s/%d", g_dir, child);
	mkdir(sub, 0700);
	snprintf(name, sizeof name, "%s-%d", g_token, child);
	tu_expand(out, n, g_tmpl, name, sub);
}

static void
run_init(struct run *r, int child)
{
	memset(r, 0, sizeof *r);
	if (strncmp(g_tmpl, "pair:", 5) == 0) {
		r->pair = 1;
		snprintf(r->uri, sizeof r->uri, "%s", g_tmpl + 5);
	} else {
		expand(r->uri, sizeof r->uri, child);
	}
	r->deadline_ms = (int)(5000 * tu_time_factor());
	for (size_t i = 0; i < BIG; i++) {
		r->big[i] = (unsigned char)(i * 7 + 3);
	}
}

/* What must be the same before and after a scenario. */
struct snap {
	int fds;
	size_t heap;
	struct tu_objs objs;
};

/* The objects first: the heap they take is then in both counts. */
static void
take(struct snap *s, const char *dir, int objs_first)
{
	if (objs_first) {
		tu_objs_snapshot(&s->objs, g_token, dir);
	}
	s->fds = tu_fd_count();
#ifdef __GLIBC__
	s->heap = mallinfo2().uordblks;
#else
	s->heap = 0; /* no mallinfo2: see main */
#endif
	if (!objs_first) {
		tu_objs_snapshot(&s->objs, g_token, dir);
	}
}

static void
compare(const struct snap *before, const char *dir)
{
	struct snap after;
	pid_t me = getpid();
	size_t idx[8];

	take(&after, dir, 0);
	if (after.fds != before->fds) {
		char d[1024];
		tu_fd_describe(d, sizeof d);
		report_fail("%d descriptors before, %d after (%s)",
		            before->fds, after.fds, d);
	} else if (g_heap && after.heap != before->heap) {
		report_fail("%zu bytes of heap in use before, %zu after",
		            before->heap, after.heap);
	} else {
		size_t n = tu_objs_new(&before->objs, &after.objs, &me, 1, idx,
		                       8);
		if (n > 0) {
			report_fail("left behind: %s%s",
			            after.objs.names[idx[0]],
			            n > 1 ? " and more" : "");
		}
	}
	tu_objs_free(&after.objs);
}

/* Child: count the call sites of one clean scenario. */
static int
child_count(int child)
{
	static struct run r;

	run_init(&r, child);
	if (!scenario(&r)) {
		return 2; /* the warm-up itself failed: reported by the parent
		           */
	}
	ipc__fault_count(1);
	int ok = scenario(&r);
	ipc__fault_count(0);
	g_sh->nsites = ipc__fault_sites(g_sh->sites, MAX_SITES);
	return ok ? 0 : 2;
}

/* Child: one fault at one site. */
static int
child_inject(int child, void *site, unsigned fault)
{
	static struct run r;
	struct snap before;
	char sub[200];

	snprintf(sub, sizeof sub, "%s/%d", g_dir, child);
	run_init(&r, child);
	if (!scenario(&r)) {
		return 2;
	}
	/* The C library allocates once for the first error text it words
	 * (its message catalogue): that is not the library's leak. */
	for (unsigned b = 1; b < 1u << IPC_FAULT_NKINDS; b <<= 1) {
		(void)!strerror(ipc__fault_errno(b));
	}
	take(&before, sub, 1);
	ipc__fault_arm(site, fault);
	int ok = scenario(&r);
	g_sh->rep.fired = ipc__fault_fired();
	ipc__fault_arm(NULL, 0);
	int transient = fault == IPC_FAULT_EINTR || fault == IPC_FAULT_SHORT ||
	                fault == IPC_FAULT_EAGAIN;
	if (g_sh->rep.fired && transient && !ok && !g_sh->rep.failed) {
		report_fail("a transient fault failed the scenario");
	}
	if (g_sh->rep.fired) {
		compare(&before, sub);
	}
	tu_objs_free(&before.objs);
	return 0;
}

struct job {
	int child;
	void *site;
	unsigned fault; /* 0: count */
};

static int
child_main(void *arg)
{
	struct job *j = arg;
	int rc = j->fault == 0 ? child_count(j->child)
	                       : child_inject(j->child, j->site, j->fault);
	fflush(NULL);
	exit(rc); /* exit, not _exit: LeakSanitizer runs at exit */
}

/* Runs one child; returns its exit code, or -1 with why set. */
static int
run_child(struct job *j, char *why, size_t n)
{
	int st;

	memset(&g_sh->rep, 0, sizeof g_sh->rep);
	pid_t pid = tu_fork(child_main, j, (unsigned)(120 * tu_time_factor()));
	if (pid < 0) {
		snprintf(why, n, "fork: %s", strerror(-pid));
		return -1;
	}
	if (tu_wait(pid, -1, &st) != 0) {
		snprintf(why, n, "waitpid failed");
		return -1;
	}
	char sub[200];
	snprintf(sub, sizeof sub, "%s/%d", g_dir, j->child);
	tu_rmtree(sub);
	if (WIFEXITED(st)) {
		return WEXITSTATUS(st);
	}
	char b[96];
	snprintf(why, n, "%s", tu_status_str(st, b, sizeof b));
	return -1;
}

/* file:line of a site (with the lines it was inlined into), from
 * addr2line when it is there. */
static void
resolve(void *site, char *where, size_t n)
{
	char cmd[160], line[256];
	Dl_info di;
	uintptr_t a = (uintptr_t)site - 1;

	snprintf(where, n, "%p", site);
	if (dladdr(site, &di) != 0) {
		a -= (uintptr_t)di.dli_fbase;
	}
	snprintf(cmd, sizeof cmd,
	         "addr2line -i -s -e /proc/%d/exe %#lx 2>/dev/null",
	         (int)getpid(), (unsigned long)a);
	FILE *p = popen(cmd, "r");
	size_t o = 0;
	while (p != NULL && fgets(line, sizeof line, p) != NULL && o < n) {
		line[strcspn(line, " \n")] = '\0';
		if (line[0] == '?') {
			break;
		}
		o += (size_t)snprintf(where + o, n - o, "%s%s",
		                      o == 0 ? "" : "<", line);
	}
	if (p != NULL) {
		pclose(p);
	}
}

static void
test_faults(void **state)
{
	(void)state;
	char why[256];
	int child = 0;
	struct job j = {child++, NULL, 0};

	int rc = run_child(&j, why, sizeof why);
	if (rc != 0) {
		fail_msg("%s: the clean scenario failed: %s", g_tmpl,
		         rc < 0 ? why : g_sh->rep.msg);
	}
	size_t n = g_sh->nsites < MAX_SITES ? g_sh->nsites : MAX_SITES;
	static struct ipc_fault_site sites[MAX_SITES];
	static char where[MAX_SITES][128];
	memcpy(sites, g_sh->sites, n * sizeof *sites);
	for (size_t i = 0; i < n; i++) {
		resolve(sites[i].site, where[i], sizeof where[i]);
	}

	size_t with = 0, armed = 0, injected = 0, failures = 0;
	unsigned kinds_seen = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned f = sites[i].faults;
		if (f != 0) {
			with++;
		}
		printf("site %-40s %-16s %6lu calls  faults:", where[i],
		       sites[i].fn, sites[i].hits);
		for (unsigned b = 1; b < 1u << IPC_FAULT_NKINDS; b <<= 1) {
			if (f & b) {
				printf(" %s", ipc__fault_name(b));
			}
		}
		printf("\n");
		for (unsigned b = 1; b < 1u << IPC_FAULT_NKINDS; b <<= 1) {
			if (!(f & b)) {
				continue;
			}
			struct job ji = {child++, sites[i].site, b};
			armed++;
			rc = run_child(&ji, why, sizeof why);
			if (rc == 0 && !g_sh->rep.fired) {
				continue; /* not reached again this time */
			}
			if (rc == 0 || g_sh->rep.failed) {
				injected++;
				kinds_seen |= b;
			}
			char ex[64];
			const char *bad = NULL;
			if (rc < 0) {
				bad = why;
			} else if (g_sh->rep.failed) {
				bad = g_sh->rep.msg;
			} else if (rc == 2) {
				bad = "the clean warm-up failed";
			} else if (rc != 0) {
				/* LeakSanitizer's exit code, for one */
				snprintf(ex, sizeof ex,
				         "the child exited with %d", rc);
				bad = ex;
			}
			if (bad != NULL) {
				failures++;
				printf("FAIL %s at %s (%s): %s\n",
				       ipc__fault_name(b), where[i],
				       sites[i].fn, bad);
			}
		}
	}
	int nk = __builtin_popcount(kinds_seen);
	printf("%s: %zu call sites reached, %zu with a plausible fault; "
	       "%zu faults injected (%zu armed, the rest not reached again), "
	       "%d kinds; %zu failures\n",
	       g_tmpl, n, with, injected, armed, nk, failures);
	if (failures > 0) {
		fail_msg("%zu of %zu injected faults broke the contract on %s",
		         failures, injected, g_tmpl);
	}
}

int
main(int argc, char **argv)
{
	const char *why;

	if (argc < 2) {
		fprintf(stderr, "usage: %s TEMPLATE\n", argv[0]);
		return 2;
	}
	g_tmpl = argv[1];
	/* Heap in use is compared before and after a scenario: without the
	 * per-thread caches of freed blocks (which count as in use) and with
	 * one arena, glibc's figure is exact. */
	const char *tun =
	        "glibc.malloc.tcache_count=0:glibc.malloc.arena_max=1";
	const char *cur = getenv("GLIBC_TUNABLES");
	if (cur == NULL || strcmp(cur, tun) != 0) {
		setenv("GLIBC_TUNABLES", tun, 1);
		execv("/proc/self/exe", argv);
		perror("execv /proc/self/exe");
		return 1;
	}
	/* OpenSSL, libnats and sd-bus keep memory of their own (caches,
	 * per-thread state) that moves between runs: there, leaks are left
	 * to the ASan build (LeakSanitizer checks every child at exit). */
	if (strncmp(g_tmpl, "tls+", 4) == 0 ||
	    strncmp(g_tmpl, "nats:", 5) == 0 ||
	    strncmp(g_tmpl, "dbus:", 5) == 0) {
		g_heap = 0;
		printf("note: the heap in use is not compared over %s (a "
		       "library of its own keeps memory)\n",
		       g_tmpl);
	}
#ifndef __GLIBC__
	g_heap = 0;
	printf("note: the heap in use is not compared (this C library has "
	       "no mallinfo2)\n");
#endif
	if (!tu_isolate_ipc(&why)) {
		printf("note: %s; System V objects are not checked\n", why);
	}
	g_sh = mmap(NULL, sizeof *g_sh, PROT_READ | PROT_WRITE,
	            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g_sh == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	tu_unique(g_token, sizeof g_token, "flt");
	if (tu_tmpdir(g_dir, sizeof g_dir, "ipcfault") != 0) {
		perror("tmpdir");
		return 1;
	}
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_faults),
	};
	int rc = cmocka_run_group_tests_name(g_tmpl, tests, NULL, NULL);
	tu_rmtree(g_dir);
	return rc;
}
