/*
 * What the conformance suite's files share (tests/conformance.c has the
 * runner and explains the suite; conf_common.c the sessions, the control
 * link and the helpers; conf_basic.c, conf_close.c, conf_contract.c and
 * conf_volume.c the cases).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_TESTS_CONFORMANCE_H
#define IPC_TESTS_CONFORMANCE_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>

#include "ipc/ipc.h"
#include "testutil.h"

/* Deadlines, scaled by IPC_TEST_TIME_FACTOR (sanitizers, valgrind). */
#define LIMIT_S ((unsigned)(60 * tu_time_factor())) /* per case and peer */
#define STEP_MS ((int)(20000 * tu_time_factor()))   /* channel timeout */
#define CTL_MS  ((int)(30000 * tu_time_factor()))   /* control socket wait */
#define MIB     (1u << 20)

enum mode {
	M_OPEN,   /* ipc_open on both sides, peer in another process */
	M_THREAD, /* ipc_open on both sides, peer is a thread */
	M_PAIR,   /* ipc_pair before fork */
	M_FD,     /* fd://R,W over two pipes made before fork */
};

struct conf_global {
	const char *tmpl;     /* the template as given */
	const char *pair_uri; /* M_PAIR: the URI for ipc_pair */
	enum mode mode;
	char scheme[32];
	char host[64]; /* %p: the host of the URI, without brackets */
	const char *skip_all;
	unsigned seed;
	/* probed once, from a channel made like the cases make theirs */
	unsigned caps;
	size_t max_msg;
	/* framing=line: no payload byte may be '\n' (fill() avoids it, and
	 * put32() writes 28 bits, 7 to a byte) */
	int text;
	/* the peer is a thread of this process (inproc: its channels cannot
	 * cross processes), in M_THREAD and in M_PAIR */
	int threads;
	/* framing=line or raw over TCP: a peer's FIN may be a half-close, so
	 * one send after it is accepted (docs/tcp.md) */
	int half_close;
};

/* The current case's names; set by the runner before it forks the case. */
struct conf_case {
	char token[64];
	char dir[96];
	char uri[512];
};

#define SEND_STR(ch, s)                                                       \
	TU_CHECK_EQ(send_wait((ch), (s), strlen(s), STEP_MS),                 \
	            (long long)strlen(s))

/* Receive one message and compare it with the string s. */
#define EXPECT_STR(ch, s)                                                     \
	do {                                                                  \
		char eb_[256];                                                \
		ssize_t er_ = recv_wait((ch), eb_, sizeof eb_, STEP_MS);      \
		TU_CHECK_MSG(er_ == (ssize_t)strlen(s) &&                     \
		                     memcmp(eb_, (s), strlen(s)) == 0,        \
		             "expected message \"%s\", got %s (%zd) "         \
		             "\"%.*s\"",                                      \
		             (s), tu_errname((int)er_), er_,                  \
		             er_ > 0 ? (int)er_ : 0, eb_);                    \
	} while (0)

/* Receive one message of exactly len bytes filled from seed. */
#define EXPECT_FILL(ch, buf, cap, len, seed)                                  \
	do {                                                                  \
		ssize_t fr_ = recv_wait((ch), (buf), (cap), STEP_MS);         \
		TU_CHECK_MSG(fr_ == (ssize_t)(len),                           \
		             "expected a %zu-byte message, got %s (%zd)",     \
		             (size_t)(len), tu_errname((int)fr_), fr_);       \
		long fm_ = mismatch((buf), (size_t)(len), (seed));            \
		TU_CHECK_MSG(fm_ < 0, "%zu-byte message differs at byte %ld", \
		             (size_t)(len), fm_);                             \
	} while (0)

/* Session options. */
#define S_PEER_CREATES 0x1 /* the peer opens with IPC_CREATE, we do not */
#define S_NO_HELLO     0x2 /* no first message from connector to creator */
#define S_NONBLOCK     0x4 /* our end is opened with IPC_NONBLOCK */
#define S_ADOPT        0x8 /* s->ch is already open (with IPC_CREATE) */

enum { CTL_GO = 0x474f, CTL_READY, CTL_DONE, CTL_CLOSED, CTL_SENT };

/* What a peer function sees. */
struct side {
	ipc_channel *ch; /* set to NULL if the function closes it */
	int ctl;
	void *arg;
	int creator;
};

typedef int (*peer_fn)(struct side *sd);

struct boot {
	peer_fn fn;
	void *arg;
	unsigned opts;
	int ctl, ctl_other;   /* peer's and our control ends */
	int rfd, wfd, ofd[2]; /* M_FD: peer's and our pipe ends */
	ipc_channel *pair_ours, *pair_peer;
	int pair_nfd; /* M_PAIR: descriptors ipc_pair() made */
	char uri[512];
};

struct sess {
	ipc_channel *ch;
	int ctl;
	pid_t pid;
	pthread_t th;
	int threaded;
	unsigned opts;
	struct boot *boot;
};

/* A peer that obeys commands from the control socket: CMD | (arg << 8). */
enum {
	CMD_EXIT = 1,    /* return */
	CMD_SENDN,       /* send arg messages "m0".."m<arg-1>"; CTL_SENT */
	CMD_CLOSE,       /* close the channel; CTL_CLOSED */
	CMD_SENDN_CLOSE, /* send arg messages, close; CTL_CLOSED */
	CMD_ECHO,        /* echo arg messages back; CTL_DONE */
	CMD_PAUSE,       /* CTL_READY, then sleep until killed */
	CMD_LATE_SEND,   /* CTL_READY, sleep arg ms, send "late" */
	CMD_DRAIN_EPIPE, /* receive arg messages "m0".., then expect -EPIPE
	                    on recv and (within 2 s) on send; return */
};

#define CMD(c, arg) ((c) | ((arg) << 8))

extern struct conf_global G;
extern struct conf_case C;
extern const char hello[];

int expand(char *out, size_t n, const char *tmpl, const char *tag);
void uri_created_by(char *out, size_t n, pid_t creator);
/* CONF_NETNS_HOSTS=OURS,PEERS: the URI of a channel the peer creates (in
 * the namespace of CONF_NETNS) has "//OURS" replaced by "//PEERS". */
void netns_peer_uri(char *uri, size_t n);
int prepare_case(void);
size_t min_sz(size_t a, size_t b);
uint32_t xorshift(uint32_t *s);
void fill(void *buf, size_t n, uint32_t seed);
long mismatch(const void *buf, size_t n, uint32_t seed);
uint32_t fnv1a(const void *buf, size_t n);
void put32(unsigned char *p, uint32_t v);
uint32_t get32(const unsigned char *p);
void *xmalloc(size_t n);
ssize_t recv_wait(ipc_channel *ch, void *buf, size_t cap, int ms);
ssize_t send_wait(ipc_channel *ch, const void *buf, size_t len, int ms);
void lone_open(ipc_channel **a, ipc_channel **b);
void need_caps(unsigned caps, const char *what);
void need_open_mode(const char *what);
void need_process(const char *what);
void ctl_put(int fd, int v);
int ctl_get(int fd);
void ctl_expect(int fd, int want);
void sess_start(struct sess *s, peer_fn fn, void *arg, unsigned opts);
void sess_close(struct sess *s);
void sess_join(struct sess *s, int killed);
void sess_end(struct sess *s);
void kill_peer(struct sess *s);
void send_numbered(ipc_channel *ch, int n);
void expect_numbered(ipc_channel *ch, int n);
int send_until_epipe(ipc_channel *ch);
void echo_one(ipc_channel *ch, unsigned char *buf, size_t cap, int polled);
int peer_cmd(struct side *sd);
void fill_msg(unsigned char *buf, size_t len, long n);
int fill_channel(ipc_channel *ch, unsigned char *buf, long *n);
short poll1(ipc_channel *ch, short events, int ms, int want);
int probe(void);

/* The cases. */
int case_api_misuse(void *unused);
int case_bad_option(void *unused);
int case_boundaries(void *unused);
int case_creator_waits(void *unused);
int case_duplex(void *unused);
int case_eintr(void *unused);
int case_emsgsize_recv(void *unused);
int case_emsgsize_send(void *unused);
int case_facts(void *unused);
int case_fd_level(void *unused);
int case_full_send(void *unused);
int case_kill_creator(void *unused);
int case_kill_recv(void *unused);
int case_kill_send(void *unused);
int case_listener(void *unused);
int case_local_uri(void *unused);
int case_modes(void *unused);
int case_nonblock(void *unused);
int case_open_close_repeat(void *unused);
int case_open_missing(void *unused);
int case_ordering(void *unused);
int case_pair_fork(void *unused);
int case_peer_close(void *unused);
int case_poll(void *unused);
int case_pubsub_stream(void *unused);
int case_pubsub_kill(void *unused);
int case_pubsub_history(void *unused);
int case_pubsub_nobody(void *unused);
int case_pubsub_drop(void *unused);
int case_pubsub_poll(void *unused);
int case_pollitem(void *unused);
int case_self_close(void *unused);
int case_sizes(void *unused);
int case_stream(void *unused);
int case_timeout(void *unused);
int case_zerocopy(void *unused);

#endif
