/*
 * Fuzz target: what unix+seqpacket:// and unix+dgram:// read from a
 * hostile peer (src/core/sock.c): datagrams of any length, memfd carriers
 * (16-byte header "libipcM1" + big-endian length, the message in an
 * attached memfd) with lying lengths, short or odd files, extra or missing
 * descriptors.  An IPC_CREATE channel on an abstract address receives
 * what a raw socket of the harness sends.
 *
 * Input: byte 0: bit 0 dgram (else seqpacket), bits 1-3 maxmsg; then ops,
 * each a byte whose low 2 bits pick:
 *   0  a plain datagram of the next (op >> 2) bytes
 *   1  a carrier: 2 bytes of announced length (scaled by op bits 2-3), a
 *      byte of file length (same scale), a byte to fill the file with;
 *      op bit 4 spoils the magic, bit 5 attaches a second descriptor,
 *      bit 6 sends a pipe instead of a memfd, bit 7 attaches nothing
 *   2  receive once into a buffer of caps[op >> 2 & 7] bytes
 *   3  receive with peek-sized buffer then a large one
 * The channel must return a length that fits or a documented error, and
 * stay failed after -EPROTO.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipc/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failed check names its line (and the library's last error). */
#define FAIL()                                                                \
	do {                                                                  \
		fprintf(stderr, "%s:%d: check failed (last error: %s)\n",     \
		        __FILE__, __LINE__, ipc_last_error());                \
		abort();                                                      \
	} while (0)

#define BIG ((size_t)1 << 20)
/* A datagram above maxmsg is never delivered, whatever the buffer (it
 * fails the channel with -EPROTO).  -DCHECK_MAXMSG=0 turns the check off. */
#ifndef CHECK_MAXMSG
#define CHECK_MAXMSG 1
#endif

static const size_t maxmsgs[8] = {16,    100,    4096, 65536,
                                  70000, 200000, BIG,  BIG};
static const size_t caps[8] = {0, 1, 16, 100, 4096, 65536, 200000, BIG};
static const size_t scales[4] = {1, 64, 4096, 65536};
static unsigned counter;

struct fx {
	ipc_channel *ch;
	size_t maxmsg;
	int failed;
};

static unsigned char *rbuf;

static void
receive(struct fx *f, size_t cap)
{
	ssize_t n = ipc_recv(f->ch, rbuf, cap, IPC_NONBLOCK);
	if (n >= 0) {
		if (f->failed) {
			fprintf(stderr, "delivered %zd after -EPROTO\n", n);
			FAIL();
		}
		if ((size_t)n > cap ||
		    (CHECK_MAXMSG && (size_t)n > f->maxmsg)) {
			fprintf(stderr, "delivered %zd, cap %zu maxmsg %zu\n",
			        n, cap, f->maxmsg);
			FAIL();
		}
		return;
	}
	if (f->failed && n != -EPROTO) {
		FAIL(); /* sticky */
	}
	if (n == -EPROTO) {
		f->failed = 1;
	} else if (n != -EAGAIN && n != -EMSGSIZE && n != -EPIPE) {
		FAIL();
	}
}

static void
carrier(int sock, unsigned op, const uint8_t *a)
{
	size_t scale = scales[(op >> 2) & 3];
	unsigned long long announced = ((size_t)a[0] << 8 | a[1]) * scale;
	size_t flen = (size_t)a[2] * scale;
	unsigned char hdr[16] = {'l', 'i', 'b', 'i', 'p', 'c', 'M', '1'};
	int fds[2] = {-1, -1}, nfd = 0, pp[2] = {-1, -1};

	if (flen > 4 * BIG) {
		flen = 4 * BIG;
	}
	for (int i = 0; i < 8; i++) {
		hdr[8 + i] = (unsigned char)(announced >> (56 - 8 * i));
	}
	if (op & 0x10) {
		hdr[7] = '2';
	}
	if (!(op & 0x80)) {
		if (op & 0x40) {
			if (pipe2(pp, O_CLOEXEC) < 0) {
				FAIL();
			}
			(void)write(pp[1], hdr, sizeof(hdr));
			fds[nfd++] = pp[0];
		} else {
			int m = memfd_create("fuzz-carrier", MFD_CLOEXEC);
			if (m < 0 || ftruncate(m, (off_t)flen) < 0) {
				FAIL();
			}
			if (flen > 0 && a[3] != 0) {
				unsigned char b[4096];
				memset(b, a[3], sizeof(b));
				for (size_t o = 0; o < flen; o += sizeof(b)) {
					size_t k = flen - o < sizeof(b)
					                   ? flen - o
					                   : sizeof(b);
					(void)pwrite(m, b, k, (off_t)o);
				}
			}
			fds[nfd++] = m;
		}
		if (op & 0x20) {
			fds[nfd++] = dup(fds[0]);
		}
	}
	union {
		char b[CMSG_SPACE(sizeof(int) * 2)];
		struct cmsghdr align;
	} cm;
	struct iovec iov = {.iov_base = hdr, .iov_len = sizeof(hdr)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	memset(&cm, 0, sizeof(cm));
	if (nfd > 0) {
		mh.msg_control = cm.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfd);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfd);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfd);
	}
	(void)sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	for (int i = 0; i < nfd; i++) {
		close(fds[i]);
	}
	if (pp[1] >= 0) {
		close(pp[1]);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char uri[128], name[64];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct fx f;

	if (size < 1 || size > 2000) {
		return 0;
	}
	if (rbuf == NULL && (rbuf = malloc(BIG)) == NULL) {
		FAIL();
	}
	int dgram = data[0] & 1;
	memset(&f, 0, sizeof(f));
	f.maxmsg = maxmsgs[(data[0] >> 1) & 7];
	snprintf(name, sizeof(name), "libipc-fuzz-%d-%u", (int)getpid(),
	         counter++);
	snprintf(uri, sizeof(uri), "unix+%s://@%s?maxmsg=%zu",
	         dgram ? "dgram" : "seqpacket", name, f.maxmsg);
	if (ipc_open(&f.ch, uri, IPC_CREATE | IPC_NONBLOCK) != 0) {
		return 0;
	}
	int sock = socket(AF_UNIX,
	                  (dgram ? SOCK_DGRAM : SOCK_SEQPACKET) | SOCK_CLOEXEC,
	                  0);
	size_t nl = strlen(name);
	memcpy(sa.sun_path + 1, name, nl);
	socklen_t alen =
	        (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + nl);
	if (sock < 0 || connect(sock, (struct sockaddr *)&sa, alen) < 0) {
		FAIL();
	}
	/* An honest first message reaches the channel: the address and the
	 * harness are right. */
	if (send(sock, "hi!", 3, MSG_NOSIGNAL) != 3 ||
	    ipc_recv(f.ch, rbuf, 16, IPC_NONBLOCK) != 3) {
		FAIL();
	}
	size_t i = 1;
	while (i < size) {
		unsigned op = data[i++];
		switch (op & 3) {
		case 0: {
			size_t n = op >> 2;
			n = n < size - i ? n : size - i;
			(void)send(sock, data + i, n,
			           MSG_NOSIGNAL | MSG_DONTWAIT);
			i += n;
			break;
		}
		case 1:
			if (size - i < 4) {
				i = size;
				break;
			}
			carrier(sock, op, data + i);
			i += 4;
			break;
		case 2:
			receive(&f, caps[(op >> 2) & 7]);
			break;
		default:
			receive(&f, caps[(op >> 2) & 3]);
			receive(&f, BIG);
			break;
		}
	}
	close(sock);
	for (int k = 0; k < 64 && !f.failed; k++) {
		receive(&f, BIG);
	}
	ipc_close(f.ch);
	return 0;
}
