/*
 * The shm:// rendezvous socket and descriptor passing (shmrdv.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "driver.h"
#include "shmrdv.h"

#define PREFIX "libipc/shm/"

static uint64_t
fnv1a(const char *s, uint64_t h)
{
	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

socklen_t
ipc__shm_addr(struct sockaddr_un *sa, const char *name)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	char *p = sa->sun_path + 1;
	size_t room = sizeof(sa->sun_path) - 1;
	size_t n;
	if (strlen(PREFIX) + strlen(name) <= room) {
		n = (size_t)snprintf(p, room + 1, "%s%s", PREFIX, name);
	} else {
		n = (size_t)snprintf(
		        p, room + 1, "%s#%016llx%016llx%.48s", PREFIX,
		        (unsigned long long)fnv1a(name, 0xcbf29ce484222325ull),
		        (unsigned long long)fnv1a(name, 0x84222325cbf29ce4ull),
		        name);
	}
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

/* A non-blocking seqpacket socket and NAME's address: fd or an error. */
static int
rdv_socket(const char *name, const char *uri, struct sockaddr_un *sa,
           socklen_t *len)
{
	*len = ipc__shm_addr(sa, name);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
	                0);
	return fd < 0 ? ipc__errno(-errno, uri, "socket") : fd;
}

int
ipc__shm_bind(const char *name, const char *uri, int *out)
{
	struct sockaddr_un sa;
	socklen_t len;
	int fd = rdv_socket(name, uri, &sa, &len);
	if (fd < 0) {
		return fd;
	}
	if (bind(fd, (struct sockaddr *)&sa, len) < 0) {
		int e = errno;
		close(fd);
		if (e == EADDRINUSE) {
			return ipc__err(-EEXIST, uri,
			                "the name is served already (abstract "
			                "socket @%s in use)",
			                sa.sun_path + 1);
		}
		return ipc__errno(-e, uri, "bind @%s", sa.sun_path + 1);
	}
	if (listen(fd, SOMAXCONN) < 0) {
		int e = -errno;
		close(fd);
		return ipc__errno(e, uri, "listen");
	}
	*out = fd;
	return 0;
}

int
ipc__shm_connect(const char *name, const char *uri, int *out)
{
	struct sockaddr_un sa;
	socklen_t len;
	int fd = rdv_socket(name, uri, &sa, &len);
	if (fd < 0) {
		return fd;
	}
	if (connect(fd, (struct sockaddr *)&sa, len) < 0) {
		int e = errno, r;
		close(fd);
		if (e == ECONNREFUSED || e == ENOENT) {
			r = ipc__err(-ECONNREFUSED, uri,
			             "nobody serves this name (open it with "
			             "IPC_CREATE, IPC_PUBLISH or ipc_listen "
			             "first)");
		} else if (e == EAGAIN) {
			r = ipc__err(-ECONNREFUSED, uri,
			             "the server's backlog is full");
		} else {
			r = ipc__errno(-e, uri, "connect to @%s",
			               sa.sun_path + 1);
		}
		return r;
	}
	*out = fd;
	return 0;
}

int
ipc__shm_peer_allowed(int fd, unsigned mode, const struct ipc_trust *t,
                      int server, const char *uri)
{
	struct ipc_cred c;
	int r = ipc__cred_socket(fd, &c, uri);
	if (r < 0) {
		return r;
	}
	if (!server || t->given) {
		return ipc__trust_check(
		        t, uri, server ? "the peer" : "the channel's creator",
		        &c);
	}
	if (c.uid == geteuid() || c.uid == 0 || (mode & 0007) != 0) {
		return 0;
	}
	if ((mode & 0070) != 0 && c.gid == getegid()) {
		return 0;
	}
	return ipc__err(-EACCES, uri,
	                "peer uid %u gid %u is not allowed by mode=%04o "
	                "(same user only by default)",
	                (unsigned)c.uid, (unsigned)c.gid, mode);
}

int
ipc__shm_sendfds(int sock, const void *buf, size_t len, const int *fds,
                 int nfd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * IPC_SHM_MAXFDS)];
		struct cmsghdr align;
	} cm;
	memset(&cm, 0, sizeof(cm));
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (nfd > IPC_SHM_MAXFDS) {
		return -EINVAL;
	}
	if (nfd > 0) {
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfd);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfd);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfd);
	}
	if (sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		return -errno;
	}
	return 0;
}

ssize_t
ipc__shm_recvfds(int sock, void *buf, size_t len, int *fds, int maxfd,
                 int *nfd, int *ctrunc)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * IPC_SHM_MAXFDS)];
		struct cmsghdr align;
	} cm;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = cm.buf,
	                    .msg_controllen = sizeof(cm.buf)};
	*nfd = 0;
	*ctrunc = 0;
	ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0) {
		return -errno;
	}
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL;
	     c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET ||
		    c->cmsg_type != SCM_RIGHTS) {
			continue;
		}
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		const unsigned char *p = CMSG_DATA(c);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, p + i * sizeof(int), sizeof(fd));
			if (*nfd < maxfd) {
				fds[(*nfd)++] = fd;
			} else {
				close(fd);
			}
		}
	}
	*ctrunc = (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) != 0;
	return n;
}

void
ipc__shm_refuse(int conn, int err)
{
	struct ipc_shm_hello h;
	int fds[IPC_SHM_MAXFDS], nfd, tr;
	/* Read what the client sent, closing its descriptors, so that the
	 * close that follows is a clean hang-up rather than a reset. */
	while (ipc__shm_recvfds(conn, &h, sizeof(h), fds, IPC_SHM_MAXFDS, &nfd,
	                        &tr) > 0) {
		for (int i = 0; i < nfd; i++) {
			close(fds[i]);
		}
	}
	memset(&h, 0, sizeof(h));
	h.magic = IPC_SHM_HELLO_MAGIC;
	h.version = IPC_SHM_VERSION;
	h.status = err;
	(void)ipc__shm_sendfds(conn, &h, sizeof(h), NULL, 0);
}

int
ipc__shm_read_refusal(int sock)
{
	struct ipc_shm_hello h;
	ssize_t n = recv(sock, &h, sizeof(h), MSG_DONTWAIT);

	if (n < 0 && errno == ECONNRESET) {
		/* Reported before what is queued: read on. */
		n = recv(sock, &h, sizeof(h), MSG_DONTWAIT);
	}
	if (n == (ssize_t)sizeof(h) && h.magic == IPC_SHM_HELLO_MAGIC &&
	    h.status > 0 && h.status < 4096) {
		return (int)h.status;
	}
	return 0;
}

int
ipc__shm_memfd(const char *label, size_t len, unsigned mode, const char *uri,
               int *out)
{
	int fd = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING), r;
	if (fd < 0) {
		return ipc__errno(-errno, uri, "memfd_create");
	}
	if (ftruncate(fd, (off_t)len) < 0) {
		r = ipc__errno(-errno, uri, "ftruncate of the memfd to %zu",
		               len);
		goto fail;
	}
	if (fchmod(fd, mode & 0777) < 0) {
		r = ipc__errno(-errno, uri, "fchmod of the memfd");
		goto fail;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) <
	    0) {
		r = ipc__errno(-errno, uri, "sealing the memfd");
		goto fail;
	}
	*out = fd;
	return 0;
fail:
	close(fd);
	return r;
}

int
ipc__shm_memfd_ok(int fd, uint64_t len)
{
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);
	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	       (uint64_t)st.st_size == len && seals >= 0 &&
	       (seals & F_SEAL_SHRINK);
}

void
ipc__epoll_add(int epfd, int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.fd = fd};
	if (epfd >= 0 && fd >= 0) {
		epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
	}
}

void
ipc__epoll_del(int epfd, int fd)
{
	if (epfd >= 0 && fd >= 0) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
	}
}
