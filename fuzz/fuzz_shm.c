/*
 * Fuzz target: shm://'s rendezvous as a hostile peer plays it.
 *
 * Server role (byte 0 bit 0 clear): an IPC_CREATE channel waits on its
 * abstract seqpacket address; the harness connects like a client and sends
 * a hello (struct below, the wire format of src/backends/shm.c) with
 * descriptors: a memfd holding two formatted rings (src/core/ring.h), and
 * eventfds.  The input picks what is wrong with it: magic, version,
 * status, name, ring and segment sizes, the memfd's length and seals, the
 * number and kind of descriptors, the hello's length, and bytes patched
 * into the segment before the server maps it and after (the server then
 * receives and sends).  The server must refuse what is wrong with an
 * error, never crash or read outside the segment.
 *
 * Client role (bit 0 set): the harness listens on the address, an opener
 * connects and sends its hello; the harness answers with bytes of the
 * input (a forged refusal, or anything) and hangs up.  The opener must
 * report an error.
 *
 * Input: byte 0 flags, byte 1 sizes, byte 2 descriptors, then 3-byte
 * patches {offset hi, offset lo, value}; a patch with offset hi 0xff
 * separates "before the server maps" from "after".
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <fcntl.h>

#include "core/ring.h"
#include "ipc/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failed check names its line (and the library's last error). */
#define FAIL()                                                                \
	do {                                                                  \
		fprintf(stderr, "%s:%d: check failed (last error: %s)\n",     \
		        __FILE__, __LINE__, ipc_last_error());                \
		abort();                                                      \
	} while (0)

/* The wire format (src/backends/shm.c).  An honest hello must be taken
 * (checked below), so these cannot drift from the driver's unnoticed. */
#define SEG_HDR     4096u
#define SEG_MAGIC   0x31676573636d6873ull
#define HELLO_MAGIC 0x6c6c6568u
#define VERSION     1u
#define NFDS        5

struct hello {
	uint32_t magic;
	uint32_t version;
	int32_t status;
	uint32_t reserved;
	uint64_t ring_size;
	uint64_t seg_len;
	char name[208];
};

struct seg {
	uint64_t magic, version, ring_size, seg_len;
	uint32_t holders[2];
};

static size_t
page_round(size_t n)
{
	return (n + 4095) & ~(size_t)4095;
}

static size_t
seg_len_for(size_t ring)
{
	return SEG_HDR + 2 * page_round(ipc_ring_region_size(ring));
}

static unsigned counter;

static int
addr(struct sockaddr_un *sa, const char *name)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	int n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1,
	                 "libipc/shm/%s", name);
	return (int)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static void
sendfds(int sock, const void *p, size_t n, const int *fds, int nfd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} cm;
	struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	memset(&cm, 0, sizeof(cm));
	if (nfd > 0) {
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfd);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfd);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfd);
	}
	(void)sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void
expect(ssize_t n, size_t cap)
{
	/* A length that fits, or a negative errno. */
	if (n > (ssize_t)cap || n < -4095) {
		FAIL();
	}
}

static void
patch(unsigned char *m, size_t len, const uint8_t **p, const uint8_t *end)
{
	while (end - *p >= 3 && (*p)[0] != 0xff) {
		size_t off = ((size_t)(*p)[0] << 8 | (*p)[1]) * 7 % len;
		m[off] = (*p)[2];
		*p += 3;
	}
	*p = end - *p >= 3 ? *p + 3 : end; /* the separator, or the end */
}

static void
as_server(const char *name, const uint8_t *data, size_t size)
{
	static unsigned char buf[1 << 16];
	char uri[80];
	ipc_channel *srv;
	struct sockaddr_un sa;
	uint8_t fl = data[0], sz = data[1], fdsel = data[2];
	const uint8_t *p = data + 3, *end = data + size;
	int honest =
	        (fl & 0xfe) == 0 && (sz & 0xfc) == 0 && (fdsel & 0x38) == 0 &&
	        ((fdsel & 7) == 0 || (fdsel & 7) == 5 || (fdsel & 7) == 7) &&
	        (end - p < 3 || p[0] == 0xff);

	snprintf(uri, sizeof(uri), "shm://%s", name);
	if (ipc_open(&srv, uri, IPC_CREATE | IPC_NONBLOCK) != 0) {
		return; /* a name left by an earlier crash: not this input */
	}
	int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	socklen_t alen = (socklen_t)addr(&sa, name);
	if (sock < 0 || connect(sock, (struct sockaddr *)&sa, alen) < 0) {
		FAIL();
	}
	/* The segment: honest sizes unless the input says otherwise. */
	size_t ring = (size_t)IPC_RING_MIN << (sz & 3);
	size_t len = seg_len_for(ring);
	size_t flen = len;
	if (sz & 0x10) {
		flen = (sz & 0x20) ? len - 4096 : len + 4096;
	}
	int fds[8];
	int nfd = 0;
	int mfd = memfd_create("fuzz-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0 || ftruncate(mfd, (off_t)flen) < 0) {
		FAIL();
	}
	unsigned char *m =
	        mmap(NULL, flen, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (m == MAP_FAILED) {
		FAIL();
	}
	struct seg *hd = (struct seg *)m;
	hd->magic = SEG_MAGIC;
	hd->version = VERSION;
	hd->ring_size = ring;
	hd->seg_len = len;
	hd->holders[0] = hd->holders[1] = 1;
	size_t stride = page_round(ipc_ring_region_size(ring));
	if (flen >= len) {
		ipc_ring_format(m + SEG_HDR, ring);
		ipc_ring_format(m + SEG_HDR + stride, ring);
	}
	patch(m, flen, &p, end);
	if (!(fl & 0x80) &&
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
		FAIL();
	}
	/* Descriptors: the memfd (or a pipe in its place), then eventfds. */
	int want = (fdsel & 7) == 7 ? NFDS : (fdsel & 7);
	if ((fdsel & 7) == 0) {
		want = NFDS;
	}
	int pp[2] = {-1, -1};
	if ((fdsel & 0x08) && pipe2(pp, O_CLOEXEC) == 0) {
		fds[nfd++] = pp[0];
	} else {
		fds[nfd++] = mfd;
	}
	while (nfd < want + ((fdsel & 0x10) ? 2 : 0) && nfd < 8) {
		int e = (fdsel & 0x20) && nfd == 2
		                ? dup(sock)
		                : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (e < 0) {
			FAIL();
		}
		fds[nfd++] = e;
	}
	struct hello h;
	memset(&h, 0, sizeof(h));
	h.magic = (fl & 0x02) ? 0x6c6c6569u : HELLO_MAGIC;
	h.version = (fl & 0x04) ? 2u : VERSION;
	h.status = (fl & 0x08) ? (int32_t)fdsel - 128 : 0;
	h.ring_size = (sz & 0x04) ? ring + 1 : ring;
	h.seg_len = (sz & 0x08) ? len + 4096 : len;
	if (sz & 0x40) {
		h.ring_size = (uint64_t)1 << (sz & 0x3f);
		h.seg_len = (sz & 0x80) ? seg_len_for((size_t)h.ring_size &
		                                      ((1ull << 40) - 1))
		                        : len;
	}
	snprintf(h.name, sizeof(h.name), "%s%s", name, (fl & 0x10) ? "x" : "");
	if (fl & 0x20) {
		memset(h.name, 'n', sizeof(h.name)); /* no terminator */
	}
	size_t hlen = (fl & 0x40) ? (size_t)(fdsel % sizeof(h)) : sizeof(h);
	sendfds(sock, &h, hlen, fds, nfd);
	for (int i = 0; i < nfd; i++) {
		if (fds[i] != mfd) {
			close(fds[i]);
		}
	}
	if (pp[1] >= 0) {
		close(pp[1]);
	}
	close(mfd);
	/* The server takes the client (or refuses it) on its first call. */
	ssize_t r = ipc_recv(srv, buf, sizeof(buf), IPC_NONBLOCK);
	expect(r, sizeof(buf));
	if (honest && (r != -EAGAIN || ipc_send(srv, "x", 1, 0) != 1)) {
		FAIL(); /* an honest client must be taken */
	}
	/* Scribble over the live segment, then use the channel. */
	while (p < end) {
		patch(m, flen, &p, end);
		expect(ipc_recv(srv, buf, sizeof(buf), IPC_NONBLOCK),
		       sizeof(buf));
		expect(ipc_recv(srv, buf, 3, IPC_NONBLOCK), 3);
		ssize_t s = ipc_send(srv, buf, (size_t)(sz & 0x7f) * 64,
		                     IPC_NONBLOCK);
		if (s > 0 && (size_t)s != (size_t)(sz & 0x7f) * 64) {
			FAIL();
		}
	}
	munmap(m, flen);
	close(sock);
	ipc_close(srv);
}

static void
as_client(const char *name, const uint8_t *data, size_t size)
{
	static unsigned char buf[4096];
	char uri[80];
	struct sockaddr_un sa;
	ipc_channel *cl;

	int ls = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	socklen_t alen = (socklen_t)addr(&sa, name);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, alen) < 0 ||
	    listen(ls, 4) < 0) {
		if (ls >= 0) {
			close(ls);
		}
		return;
	}
	snprintf(uri, sizeof(uri), "shm://%s?size=4096", name);
	int r = ipc_open(&cl, uri, IPC_NONBLOCK);
	if (r != 0) {
		expect(r, 0);
		close(ls);
		return;
	}
	int conn = accept(ls, NULL, NULL);
	if (conn >= 0) {
		/* What the client sent, and its descriptors, are dropped. */
		union {
			char b[CMSG_SPACE(sizeof(int) * 8)];
			struct cmsghdr align;
		} cm;
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
		struct msghdr mh = {.msg_iov = &iov,
		                    .msg_iovlen = 1,
		                    .msg_control = cm.b,
		                    .msg_controllen = sizeof(cm.b)};
		if (recvmsg(conn, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) > 0) {
			for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
			     c = CMSG_NXTHDR(&mh, c)) {
				size_t k = (c->cmsg_len - CMSG_LEN(0)) /
				           sizeof(int);
				for (size_t i = 0; i < k; i++) {
					int fd;
					memcpy(&fd,
					       CMSG_DATA(c) + i * sizeof(int),
					       sizeof(fd));
					close(fd);
				}
			}
		}
		/* The answer: the input's bytes, as one or more messages. */
		const uint8_t *p = data + 1, *end = data + size;
		while (p < end) {
			size_t n = (size_t)(end - p) < 300 ? (size_t)(end - p)
			                                   : 300;
			sendfds(conn, p, n, NULL, 0);
			p += n;
		}
		if (!(data[0] & 2)) {
			close(conn);
			conn = -1;
		}
	}
	expect(ipc_recv(cl, buf, sizeof(buf), IPC_NONBLOCK), sizeof(buf));
	ssize_t s = ipc_send(cl, "x", 1, IPC_NONBLOCK);
	if (s != 1 && s != -EPIPE && s != -EAGAIN && s != -ECONNREFUSED) {
		expect(s, 1);
	}
	expect(ipc_recv(cl, buf, sizeof(buf), IPC_NONBLOCK), sizeof(buf));
	if (conn >= 0) {
		close(conn);
	}
	close(ls);
	ipc_close(cl);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[64];

	if (size < 3 || size > 3000) {
		return 0;
	}
	snprintf(name, sizeof(name), "fuzz-%d-%u", (int)getpid(), counter++);
	if (data[0] & 1) {
		as_client(name, data, size);
	} else {
		as_server(name, data, size);
	}
	return 0;
}
