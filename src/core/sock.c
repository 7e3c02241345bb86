/*
 * Socket helpers for the socket drivers; see sock.h.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "sock.h"

/* Abstract names of the sockets that probe for stale socket files.  A
 * libipc creator that accepts a connection from such a name drops it: the
 * probe found the socket alive and is not a peer. */
#define PROBE_PREFIX "libipc-probe-"

/* ------------------------------------------------------------ addresses -- */

int
ipc__sock_unix_addr(const struct ipc_uri *u, struct ipc_sockaddr *a)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&a->ss;
	size_t n;

	memset(a, 0, sizeof(*a));
	if (u->fspath == NULL || u->fspath[0] == '\0') {
		return ipc__err(-EINVAL, u->text,
		                "needs a socket path (scheme:///path) or an "
		                "abstract name (scheme://@name)");
	}
	n = strlen(u->fspath);
	sun->sun_family = AF_UNIX;
	if (u->abstract) {
		if (n + 1 > sizeof(sun->sun_path)) {
			return ipc__err(-EINVAL, u->text,
			                "abstract name of %zu bytes is longer "
			                "than %zu",
			                n, sizeof(sun->sun_path) - 1);
		}
		memcpy(sun->sun_path + 1, u->fspath, n);
		a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
		                     1 + n);
		return 0;
	}
	if (n + 1 > sizeof(sun->sun_path)) {
		return ipc__err(-EINVAL, u->text,
		                "socket path of %zu bytes is longer than the "
		                "%zu a Unix socket address holds",
		                n, sizeof(sun->sun_path) - 1);
	}
	memcpy(sun->sun_path, u->fspath, n + 1);
	a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

static int
resolve_error(int rc, const struct ipc_uri *u)
{
	switch (rc) {
	case EAI_NONAME:
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
		return ipc__err(-ENOENT, u->text, "unknown host \"%s\"",
		                u->host);
	case EAI_AGAIN:
		return ipc__err(-EHOSTUNREACH, u->text,
		                "cannot resolve \"%s\" now: %s", u->host,
		                gai_strerror(rc));
	case EAI_MEMORY:
		return ipc__err(-ENOMEM, u->text, "resolving \"%s\": %s",
		                u->host, gai_strerror(rc));
	case EAI_SYSTEM:
		return ipc__errno(-errno, u->text, "resolving \"%s\"",
		                  u->host);
	default:
		return ipc__err(-EINVAL, u->text, "resolving \"%s\": %s",
		                u->host, gai_strerror(rc));
	}
}

int
ipc__sock_inet_addrs(const struct ipc_uri *u, int socktype, int passive,
                     struct ipc_sockaddr **out, size_t *n)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct ipc_sockaddr *v;
	char port[16];
	const char *host = u->host;
	size_t count = 0, i = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (host != NULL && (host[0] == '\0' || strcmp(host, "*") == 0)) {
		host = NULL;
	}
	if (host == NULL && !passive) {
		return ipc__err(-EINVAL, u->text,
		                "needs a host to connect to");
	}
	snprintf(port, sizeof(port), "%u", u->port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = socktype;
	hints.ai_flags = AI_NUMERICSERV | AI_NUMERICHOST;
	if (passive) {
		hints.ai_flags |= AI_PASSIVE;
	}
	/* Numeric hosts first: that never blocks.  A name falls back to a
	 * lookup, which may (documented in docs/tcp.md). */
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc == EAI_NONAME && host != NULL) {
		hints.ai_flags &= ~AI_NUMERICHOST;
		rc = getaddrinfo(host, port, &hints, &res);
	}
	if (rc != 0) {
		return resolve_error(rc, u);
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
		    ai->ai_addrlen <= sizeof(struct sockaddr_storage)) {
			count++;
		}
	}
	if (count == 0) {
		freeaddrinfo(res);
		return ipc__err(-ENOENT, u->text,
		                "no IPv4 or IPv6 address for \"%s\"",
		                u->host != NULL ? u->host : "");
	}
	v = calloc(count, sizeof(*v));
	if (v == NULL) {
		freeaddrinfo(res);
		return ipc__err(-ENOMEM, u->text, "out of memory");
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
		    ai->ai_addrlen <= sizeof(struct sockaddr_storage)) {
			memcpy(&v[i].ss, ai->ai_addr, ai->ai_addrlen);
			v[i].len = ai->ai_addrlen;
			i++;
		}
	}
	freeaddrinfo(res);
	*out = v;
	*n = count;
	return 0;
}

int
ipc__sockaddr_equal(const struct ipc_sockaddr *a, const struct ipc_sockaddr *b)
{
	if (a->ss.ss_family != b->ss.ss_family) {
		return 0;
	}
	switch (a->ss.ss_family) {
	case AF_INET: {
		const struct sockaddr_in *x = (const void *)&a->ss;
		const struct sockaddr_in *y = (const void *)&b->ss;
		return x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *x = (const void *)&a->ss;
		const struct sockaddr_in6 *y = (const void *)&b->ss;
		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr,
		              sizeof(x->sin6_addr)) == 0;
	}
	default:
		return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
	}
}

/* -------------------------------------------------------------- sockets -- */

int
ipc__sock_new(int family, int type, const char *uri)
{
	int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return ipc__errno(-errno, uri, "socket");
	}
	return fd;
}

int
ipc__sock_pair(int type, int sv[2], const char *uri)
{
	if (socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) <
	    0) {
		return ipc__errno(-errno, uri, "socketpair");
	}
	return 0;
}

int
ipc__sock_setint(int fd, int level, int opt, int val, const char *uri)
{
	if (setsockopt(fd, level, opt, &val, sizeof(val)) < 0) {
		return ipc__errno(-errno, uri, "setsockopt(%d, %d)", level,
		                  opt);
	}
	return 0;
}

/* A socket bound to a recognisable abstract name, to probe a socket file
 * without being taken for a peer. */
static int
probe_socket(int type)
{
	static atomic_uint seq;
	struct sockaddr_un sun;
	int fd, tries;

	fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return -errno;
	}
	for (tries = 0; tries < 16; tries++) {
		int n;
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		n = snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1,
		             PROBE_PREFIX "%ld-%u", (long)getpid(),
		             atomic_fetch_add(&seq, 1));
		if (bind(fd, (struct sockaddr *)&sun,
		         (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
		                     1 + (size_t)n)) == 0) {
			return fd;
		}
		if (errno != EADDRINUSE) {
			break;
		}
	}
	/* Unnamed: still a correct probe, only a creator may take it for
	 * a peer. */
	return fd;
}

static int
is_probe(const struct sockaddr_un *sun, socklen_t len)
{
	size_t pl = strlen(PROBE_PREFIX);
	return len >= offsetof(struct sockaddr_un, sun_path) + 1 + pl &&
	       sun->sun_family == AF_UNIX && sun->sun_path[0] == '\0' &&
	       memcmp(sun->sun_path + 1, PROBE_PREFIX, pl) == 0;
}

/* Connect a probe socket of type t to a: 1 served, 0 not, -EPROTOTYPE,
 * or another -errno. */
static int
probe_one(const struct ipc_sockaddr *a, int t)
{
	int fd = probe_socket(t), r, e;

	if (fd < 0) {
		return fd;
	}
	r = connect(fd, (const struct sockaddr *)&a->ss, a->len);
	e = errno;
	close(fd);
	if (r == 0 || e == EAGAIN || e == EINPROGRESS || e == EPERM) {
		return 1; /* accepted, busy, or has its peer: alive */
	}
	if (e == ECONNREFUSED || e == ENOENT) {
		return 0;
	}
	return -e;
}

int
ipc__sock_unix_probe(const struct ipc_sockaddr *a, int type)
{
	int r = probe_one(a, type);
	return r == -EPROTOTYPE ? 1 : r;
}

/* Is the socket file at a served?  1 live, 0 stale, < 0 error.  Tries
 * the other socket types when the file is a socket of another type. */
static int
socket_file_live(const struct ipc_sockaddr *a, int type)
{
	static const int types[] = {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM};
	int r = probe_one(a, type);

	for (int i = 0; i < 3 && r == -EPROTOTYPE; i++) {
		if (types[i] != type) {
			r = probe_one(a, types[i]);
		}
	}
	return r == -EPROTOTYPE ? 1 : r;
}

struct bind_job {
	int fd;
	const struct ipc_sockaddr *a;
};

static int
bind_job(void *arg)
{
	const struct bind_job *j = arg;

	return bind(j->fd, (const struct sockaddr *)&j->a->ss, j->a->len) < 0
	               ? -errno
	               : 0;
}

int
ipc__sock_unix_bind(int fd, int type, const struct ipc_sockaddr *a,
                    const struct ipc_uri *u, struct ipc_sockfile *f)
{
	const struct sockaddr_un *sun = (const void *)&a->ss;
	const char *path = sun->sun_path;
	int abstract = sun->sun_path[0] == '\0';
	mode_t mode = 0600;
	struct stat st, st2;

	memset(f, 0, sizeof(*f));
	if (abstract) {
		if (ipc__opt_isset(u, "mode")) {
			return ipc__err(-EINVAL, u->text,
			                "mode= does not apply to abstract "
			                "sockets, which have no file");
		}
	} else {
		mode = (mode_t)ipc__opt_num(u, "mode", 0600);
		/* The file bind(2) makes takes the socket inode's mode
		 * less the umask; it is bound under ipc__umask0(), so
		 * the file has exactly these bits from its first instant
		 * and is never chmod()ed by name. */
		if (fchmod(fd, mode) < 0) {
			return ipc__errno(-errno, u->text, "fchmod");
		}
	}
	for (int attempt = 0;; attempt++) {
		int live;
		struct bind_job job = {fd, a};
		int br = abstract ? bind_job(&job)
		                  : ipc__umask0(bind_job, &job);
		if (br == 0) {
			break;
		}
		errno = -br;
		if (errno != EADDRINUSE) {
			return ipc__errno(-errno, u->text, "bind %s%s",
			                  abstract ? "@" : "",
			                  abstract ? path + 1 : path);
		}
		if (abstract) {
			return ipc__err(-EEXIST, u->text,
			                "abstract name @%s is in use",
			                path + 1);
		}
		if (attempt > 0) {
			return ipc__err(-EEXIST, u->text,
			                "%s is in use (re-created while "
			                "replacing a stale socket)",
			                path);
		}
		if (lstat(path, &st) < 0) {
			if (errno == ENOENT) {
				continue;
			}
			return ipc__errno(-errno, u->text, "lstat %s", path);
		}
		if (!S_ISSOCK(st.st_mode)) {
			return ipc__err(-EEXIST, u->text,
			                "%s exists and is not a socket", path);
		}
		live = socket_file_live(a, type);
		if (live < 0) {
			return ipc__errno(live, u->text, "probing %s", path);
		}
		if (live) {
			return ipc__err(-EEXIST, u->text,
			                "%s is in use by a live socket", path);
		}
		/* Stale: nobody listens.  Remove it if it is still the same
		 * file, and bind once more. */
		if (lstat(path, &st2) == 0 && st2.st_dev == st.st_dev &&
		    st2.st_ino == st.st_ino && unlink(path) < 0 &&
		    errno != ENOENT) {
			return ipc__errno(-errno, u->text,
			                  "removing stale socket %s", path);
		}
	}
	if (abstract) {
		return 0;
	}
	if (lstat(path, &st) < 0) {
		return ipc__errno(-errno, u->text, "lstat %s after bind",
		                  path);
	}
	f->path = strdup(path);
	if (f->path == NULL) {
		unlink(path);
		return ipc__err(-ENOMEM, u->text, "out of memory");
	}
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->owner = getpid();
	return 0;
}

int
ipc__sock_mode_check(const struct ipc_uri *u, int flags)
{
	if (!(flags & IPC_CREATE) && ipc__opt_isset(u, "mode")) {
		return ipc__err(-EINVAL, u->text,
		                "mode= applies only where the socket file is "
		                "made (IPC_CREATE, ipc_listen)");
	}
	return 0;
}

void
ipc__sockfile_remove(struct ipc_sockfile *f)
{
	struct stat st;

	if (f->path == NULL) {
		return;
	}
	/* The file is removed only when it is still ours; a check that
	 * fails for lack of kernel memory is tried again, not taken for
	 * "not ours" (which would leave the file behind). */
	int r, tries = 0;
	while ((r = lstat(f->path, &st)) != 0 &&
	       (errno == ENOMEM || errno == EINTR) && ++tries < 3) {
	}
	if (f->owner == getpid() && r == 0 && st.st_dev == f->dev &&
	    st.st_ino == f->ino) {
		unlink(f->path);
	}
	free(f->path);
	f->path = NULL;
}

int
ipc__sock_unix_listen(const struct ipc_uri *u, int type, int backlog,
                      struct ipc_sockfile *f)
{
	struct ipc_sockaddr a;
	int fd, r;

	memset(f, 0, sizeof(*f));
	r = ipc__sock_unix_addr(u, &a);
	if (r < 0) {
		return r;
	}
	fd = ipc__sock_new(AF_UNIX, type, u->text);
	if (fd < 0) {
		return fd;
	}
	r = ipc__sock_unix_bind(fd, type, &a, u, f);
	if (r < 0) {
		close(fd);
		return r;
	}
	if (listen(fd, backlog) < 0) {
		r = ipc__errno(-errno, u->text, "listen");
		ipc__sockfile_remove(f);
		close(fd);
		return r;
	}
	return fd;
}

int
ipc__sock_unix_connect(int fd, const struct ipc_sockaddr *a, const char *uri)
{
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0) {
		return 0;
	}
	switch (errno) {
	case ENOENT:
		return ipc__err(-ENOENT, uri, "no socket there yet");
	case ECONNREFUSED:
		return ipc__err(-ECONNREFUSED, uri, "nobody is listening");
	case EAGAIN:
		return ipc__err(-ECONNREFUSED, uri,
		                "the listener's backlog is full");
	case EPERM:
		return ipc__err(-ECONNREFUSED, uri,
		                "the endpoint already has its peer");
	case EPROTOTYPE:
		return ipc__err(-EPROTOTYPE, uri,
		                "the socket there is of another type");
	default:
		return ipc__errno(-errno, uri, "connect");
	}
}

int
ipc__sock_inet_listen(const struct ipc_uri *u, int type, int backlog)
{
	struct ipc_sockaddr *v;
	size_t n;
	int r, fd = -1;

	r = ipc__sock_inet_addrs(u, type, 1, &v, &n);
	if (r < 0) {
		return r;
	}
	for (size_t i = 0; i < n; i++) {
		fd = ipc__sock_new(v[i].ss.ss_family, type, u->text);
		if (fd < 0) {
			r = fd;
			break;
		}
		if (type == SOCK_STREAM) {
			r = ipc__sock_setint(fd, SOL_SOCKET, SO_REUSEADDR, 1,
			                     u->text);
			if (r < 0) {
				break;
			}
		}
		if (bind(fd, (struct sockaddr *)&v[i].ss, v[i].len) == 0) {
			r = 0;
			break;
		}
		if (errno == EADDRINUSE) {
			r = ipc__err(-EEXIST, u->text, "address in use");
		} else {
			r = ipc__errno(-errno, u->text, "bind");
		}
		close(fd);
		fd = -1;
	}
	free(v);
	if (r < 0) {
		if (fd >= 0) {
			close(fd);
		}
		return r;
	}
	if (backlog >= 0 && listen(fd, backlog) < 0) {
		r = ipc__errno(-errno, u->text, "listen");
		close(fd);
		return r;
	}
	return fd;
}

/* Is a an address of this host?  Binding port 0 on it tells. */
static int
addr_is_local(const struct ipc_sockaddr *a)
{
	struct ipc_sockaddr t = *a;
	int fd, r;

	if (t.ss.ss_family == AF_INET) {
		((struct sockaddr_in *)&t.ss)->sin_port = 0;
	} else {
		((struct sockaddr_in6 *)&t.ss)->sin6_port = 0;
	}
	fd = socket(t.ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return 0;
	}
	r = bind(fd, (struct sockaddr *)&t.ss, t.len) == 0;
	close(fd);
	return r;
}

/* One line of /proc/net/udp{,6}: the local address as 1 or 4 words in
 * the kernel's native order, and the port. */
static int
udp_line(const char *line, uint32_t w[4], int nw, unsigned *port)
{
	const char *p = strchr(line, ':');
	char *end;

	if (p == NULL) {
		return 0;
	}
	p++;
	while (*p == ' ') {
		p++;
	}
	for (int i = 0; i < nw; i++) {
		char word[9];
		for (int k = 0; k < 8; k++) {
			if (p[k] == '\0') {
				return 0;
			}
			word[k] = p[k];
		}
		word[8] = '\0';
		w[i] = (uint32_t)strtoul(word, &end, 16);
		if (*end != '\0') {
			return 0;
		}
		p += 8;
	}
	if (*p != ':') {
		return 0;
	}
	*port = (unsigned)strtoul(p + 1, &end, 16);
	return end != p + 1;
}

/* Is a socket in table (nw words per address) bound to port on one of
 * the n addresses in want? */
static int
udp_table_has(const char *table, int nw, unsigned port,
              const uint32_t (*want)[4], int n)
{
	FILE *f = fopen(table, "re");
	char line[512];
	int found = 0;

	if (f == NULL) {
		return 0;
	}
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		uint32_t w[4] = {0, 0, 0, 0};
		unsigned p;
		if (!udp_line(line, w, nw, &p) || p != port) {
			continue;
		}
		for (int i = 0; i < n && !found; i++) {
			found = memcmp(w, want[i], sizeof(uint32_t) * 4) == 0;
		}
	}
	fclose(f);
	return found;
}

int
ipc__sock_udp_bound(const struct ipc_sockaddr *a)
{
	uint32_t v4[2][4], v6[3][4];
	unsigned port;

	memset(v4, 0, sizeof(v4));
	memset(v6, 0, sizeof(v6));
	if (!addr_is_local(a)) {
		return 1;
	}
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)&a->ss;
		uint32_t ad;
		memcpy(&ad, &s4->sin_addr, 4);
		port = ntohs(s4->sin_port);
		v4[0][0] = ad; /* the address; v4[1]: 0.0.0.0 */
		/* a dual-stack IPv6 socket on :: or ::ffff:A takes it too */
		v6[1][2] = htonl(0xffff);
		v6[1][3] = ad;
		return udp_table_has("/proc/net/udp", 1, port, v4, 2) ||
		       udp_table_has("/proc/net/udp6", 4, port, v6, 2);
	}
	const struct sockaddr_in6 *s6 = (const void *)&a->ss;
	port = ntohs(s6->sin6_port);
	memcpy(v6[1], &s6->sin6_addr, 16); /* v6[0]: :: */
	return udp_table_has("/proc/net/udp6", 4, port, v6, 2);
}

int
ipc__sock_accept(int lfd, const char *uri)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &len,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			if (ss.ss_family == AF_UNIX &&
			    is_probe((const struct sockaddr_un *)&ss, len)) {
				close(fd);
				continue;
			}
			return fd;
		}
		switch (errno) {
		case EINTR:
		case ECONNABORTED:
			continue;
		case EAGAIN:
#if EWOULDBLOCK != EAGAIN
		case EWOULDBLOCK:
#endif
			return -EAGAIN;
		case EINVAL:
			/* shut down: no more peers come */
			return -EAGAIN;
		default:
			return ipc__errno(-errno, uri, "accept");
		}
	}
}

int
ipc__fd_hungup(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLRDHUP};
	int r;
	do {
		r = poll(&p, 1, 0);
	} while (r < 0 && errno == EINTR);
	return r > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* ------------------------------------------------------ one-peer creators --
 */

int
ipc__sockwait_init(struct ipc_sockwait *w, int lfd, struct ipc_sockfile *file,
                   const char *uri)
{
	struct epoll_event ev = {.events = EPOLLIN};
	int r;

	w->lfd = lfd;
	w->file = *file;
	memset(file, 0, sizeof(*file));
	atomic_store(&w->done, 0);
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->ep < 0) {
		r = ipc__errno(-errno, uri, "epoll_create1");
		goto fail;
	}
	ev.data.fd = lfd;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
		r = ipc__errno(-errno, uri, "epoll_ctl");
		goto fail;
	}
	r = pthread_mutex_init(&w->mu, NULL);
	if (r != 0) {
		r = ipc__errno(-r, uri, "pthread_mutex_init");
		goto fail;
	}
	return 0;
fail:
	if (w->ep >= 0) {
		close(w->ep);
	}
	close(lfd);
	ipc__sockfile_remove(&w->file);
	w->lfd = -1;
	w->ep = -1;
	return r;
}

/* The peer is in: nobody else gets in. */
static void
sockwait_seal(struct ipc_sockwait *w, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN};
	int extra;

	shutdown(w->lfd, SHUT_RDWR);
	/* Connections queued meanwhile (Unix sockets keep them after the
	 * shutdown) are closed now, so their openers see the end. */
	while ((extra = accept4(w->lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		close(extra);
	}
	ipc__sockfile_remove(&w->file);
	ev.data.fd = fd;
	epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev);
	epoll_ctl(w->ep, EPOLL_CTL_DEL, w->lfd, NULL);
}

/* Does the peer of connection fd pass t?  0 or -EACCES (recorded). */
static int
sock_trusted(const struct ipc_trust *t, int fd, const char *uri)
{
	struct ipc_cred c;
	int r = ipc__cred_socket(fd, &c, uri);

	return r < 0 ? r : ipc__trust_check(t, uri, "the peer", &c);
}

int
ipc__sockwait_take(struct ipc_sockwait *w, int (*setup)(void *, int),
                   void *arg, const char *uri)
{
	int fd, r = 0;

	if (ipc__sockwait_done(w)) {
		return 0;
	}
	pthread_mutex_lock(&w->mu);
	if (atomic_load_explicit(&w->refusal, memory_order_relaxed)) {
		atomic_store_explicit(&w->refusal, 0, memory_order_relaxed);
		r = ipc__trust_check(&w->trust, uri, "the peer", &w->refused);
		pthread_mutex_unlock(&w->mu);
		return r;
	}
	if (!atomic_load_explicit(&w->done, memory_order_relaxed)) {
		fd = ipc__sock_accept(w->lfd, uri);
		if (fd >= 0 && w->trust.check &&
		    (ipc__cred_socket(fd, &w->refused, uri) < 0 ||
		     ipc__trust_check(&w->trust, uri, "the peer",
		                      &w->refused) < 0)) {
			/* Dropped; the next call says so. */
			close(fd);
			atomic_store_explicit(&w->refusal, 1,
			                      memory_order_release);
			fd = -EAGAIN;
		}
		if (fd < 0) {
			r = fd;
		} else {
			r = setup(arg, fd);
			if (r < 0) {
				close(fd);
			} else {
				sockwait_seal(w, fd);
				atomic_store_explicit(&w->done, 1,
				                      memory_order_release);
			}
		}
	}
	pthread_mutex_unlock(&w->mu);
	return r;
}

void
ipc__sockwait_fini(struct ipc_sockwait *w)
{
	if (w->lfd < 0) {
		return;
	}
	close(w->lfd);
	close(w->ep);
	ipc__sockfile_remove(&w->file);
	pthread_mutex_destroy(&w->mu);
	w->lfd = -1;
	w->ep = -1;
}

int
ipc__sock_unix_dial(const struct ipc_uri *u, int type)
{
	struct ipc_sockaddr a;
	int r = ipc__sock_unix_addr(u, &a);

	if (r < 0) {
		return r;
	}
	int fd = ipc__sock_new(AF_UNIX, type, u->text);
	if (fd < 0) {
		return fd;
	}
	r = ipc__sock_unix_connect(fd, &a, u->text);
	if (r == 0) {
		struct ipc_trust t;
		struct ipc_cred c;
		r = ipc__trust_parse(
		        &t, u,
		        u->abstract || ipc__trust_path_shared(u->fspath));
		if (r == 0) {
			r = ipc__cred_socket(fd, &c, u->text);
		}
		if (r == 0) {
			r = ipc__trust_check(&t, u->text,
			                     "the channel's creator", &c);
		}
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int
ipc__sock_peer_cred(int fd, const char *uri, pid_t *pid, uid_t *uid,
                    gid_t *gid)
{
	struct ipc_cred c = {0};

	if (fd >= 0) {
		int r = ipc__cred_socket(fd, &c, uri);
		if (r < 0) {
			return r;
		}
		if (!c.known) {
			return ipc__err(-EOPNOTSUPP, uri,
			                "ipc_peer_cred: the kernel does not "
			                "know this socket's peer");
		}
	}
	return ipc__cred_out(&c, uri, pid, uid, gid);
}

int
ipc__sock_listener_fd(const ipc_listener *l)
{
	const struct ipc_sock_listener *p = ipc__clpriv(l);

	return p->fd;
}

int
ipc__sock_listener_close(ipc_listener *l)
{
	struct ipc_sock_listener *p = ipc__lpriv(l);

	close(p->fd);
	ipc__sockfile_remove(&p->file);
	return 0;
}

int
ipc__sock_listener_accept(ipc_listener *l)
{
	struct ipc_sock_listener *p = ipc__lpriv(l);
	int fd = ipc__sock_accept(p->fd, l->uri);

	if (fd >= 0 && p->trust.check) {
		int r = sock_trusted(&p->trust, fd, l->uri);
		if (r < 0) {
			close(fd);
			return r;
		}
	}
	return fd;
}

int
ipc__sock_unix_listener_open(ipc_listener *l, const struct ipc_uri *u,
                             int type)
{
	struct ipc_sock_listener *p = ipc__lpriv(l);
	int r = ipc__trust_parse(&p->trust, u, 0);

	if (r < 0) {
		return r;
	}
	int fd = ipc__sock_unix_listen(u, type, SOMAXCONN, &p->file);
	if (fd < 0) {
		return fd;
	}
	p->fd = fd;
	return 0;
}

int
ipc__sock_unix_serve_one(struct ipc_sockwait *w, const struct ipc_uri *u,
                         int type)
{
	struct ipc_sockfile file;
	int r = ipc__trust_parse(&w->trust, u, 0);

	if (r < 0) {
		return r;
	}
	int fd = ipc__sock_unix_listen(u, type, 1, &file);
	if (fd < 0) {
		return fd;
	}
	return ipc__sockwait_init(w, fd, &file, u->text);
}
