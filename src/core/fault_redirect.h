/*
 * Included first (-include) by every file of libipc-fault, the test copy
 * of the library (core/fault.h says why and how).  The system headers
 * that declare the calls come first, so that the names below rename
 * only the library's own uses: its calls, and consistently within the
 * library, struct members that happen to share a name (the driver's
 * open, close, send, recv).  stat and flock are also struct tags, so
 * they are renamed only where they are called.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_FAULT_REDIRECT_H
#define IPC_CORE_FAULT_REDIRECT_H

#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/random.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* X(name, return type, parameters): the wrappers of fault.c. */
#define IPC__FAULT_CALLS(X)                                                   \
	X(open, int, (const char *p, int fl, ...))                            \
	X(openat, int, (int d, const char *p, int fl, ...))                   \
	X(shm_open, int, (const char *p, int fl, mode_t m))                   \
	X(memfd_create, int, (const char *n, unsigned fl))                    \
	X(mmap, void *, (void *a, size_t n, int pr, int fl, int fd, off_t o)) \
	X(ftruncate, int, (int fd, off_t n))                                  \
	X(fallocate, int, (int fd, int m, off_t o, off_t n))                  \
	X(posix_fallocate, int, (int fd, off_t o, off_t n))                   \
	X(fsync, int, (int fd))                                               \
	X(fdatasync, int, (int fd))                                           \
	X(msync, int, (void *a, size_t n, int fl))                            \
	X(socket, int, (int d, int t, int p))                                 \
	X(socketpair, int, (int d, int t, int p, int sv[2]))                  \
	X(bind, int, (int fd, const struct sockaddr *a, socklen_t n))         \
	X(connect, int, (int fd, const struct sockaddr *a, socklen_t n))      \
	X(accept, int, (int fd, struct sockaddr *a, socklen_t *n))            \
	X(accept4, int, (int fd, struct sockaddr *a, socklen_t *n, int fl))   \
	X(sendmsg, ssize_t, (int fd, const struct msghdr *m, int fl))         \
	X(recvmsg, ssize_t, (int fd, struct msghdr *m, int fl))               \
	X(send, ssize_t, (int fd, const void *b, size_t n, int fl))           \
	X(recv, ssize_t, (int fd, void *b, size_t n, int fl))                 \
	X(sendto, ssize_t,                                                    \
	  (int fd, const void *b, size_t n, int fl, const struct sockaddr *a, \
	   socklen_t an))                                                     \
	X(read, ssize_t, (int fd, void *b, size_t n))                         \
	X(write, ssize_t, (int fd, const void *b, size_t n))                  \
	X(readv, ssize_t, (int fd, const struct iovec *v, int n))             \
	X(writev, ssize_t, (int fd, const struct iovec *v, int n))            \
	X(pread, ssize_t, (int fd, void *b, size_t n, off_t o))               \
	X(pwrite, ssize_t, (int fd, const void *b, size_t n, off_t o))        \
	X(close, int, (int fd))                                               \
	X(syscall, long, (long nr, ...))                                      \
	X(semop, int, (int id, struct sembuf *s, size_t n))                   \
	X(semtimedop, int,                                                    \
	  (int id, struct sembuf *s, size_t n, const struct timespec *t))     \
	X(semget, int, (key_t k, int n, int fl))                              \
	X(msgsnd, int, (int id, const void *m, size_t n, int fl))             \
	X(msgrcv, ssize_t, (int id, void *m, size_t n, long t, int fl))       \
	X(msgget, int, (key_t k, int fl))                                     \
	X(shmget, int, (key_t k, size_t n, int fl))                           \
	X(shmat, void *, (int id, const void *a, int fl))                     \
	X(mq_open, mqd_t, (const char *n, int fl, ...))                       \
	X(mq_send, int, (mqd_t q, const char *b, size_t n, unsigned p))       \
	X(mq_timedsend, int,                                                  \
	  (mqd_t q, const char *b, size_t n, unsigned p,                      \
	   const struct timespec *t))                                         \
	X(mq_receive, ssize_t, (mqd_t q, char *b, size_t n, unsigned *p))     \
	X(mq_timedreceive, ssize_t,                                           \
	  (mqd_t q, char *b, size_t n, unsigned *p,                           \
	   const struct timespec *t))                                         \
	X(epoll_create1, int, (int fl))                                       \
	X(epoll_ctl, int, (int e, int op, int fd, struct epoll_event *ev))    \
	X(epoll_wait, int, (int e, struct epoll_event *ev, int n, int t))     \
	X(eventfd, int, (unsigned v, int fl))                                 \
	X(signalfd, int, (int fd, const sigset_t *m, int fl))                 \
	X(poll, int, (struct pollfd * p, nfds_t n, int t))                    \
	X(pipe2, int, (int fds[2], int fl))                                   \
	X(mkfifo, int, (const char *p, mode_t m))                             \
	X(mkdir, int, (const char *p, mode_t m))                              \
	X(fstat, int, (int fd, struct stat *st))                              \
	X(lstat, int, (const char *p, struct stat *st))                       \
	X(fcntl, int, (int fd, int cmd, ...))                                 \
	X(fchmod, int, (int fd, mode_t m))                                    \
	X(getsockopt, int, (int fd, int l, int o, void *v, socklen_t *n))     \
	X(setsockopt, int,                                                    \
	  (int fd, int l, int o, const void *v, socklen_t n))                 \
	X(getsockname, int, (int fd, struct sockaddr *a, socklen_t *n))       \
	X(getpeername, int, (int fd, struct sockaddr *a, socklen_t *n))       \
	X(kill, int, (pid_t p, int s))                                        \
	X(sigqueue, int, (pid_t p, int s, const union sigval v))              \
	X(getrandom, ssize_t, (void *b, size_t n, unsigned fl))               \
	X(pthread_create, int,                                                \
	  (pthread_t * t, const pthread_attr_t *a, void *(*f)(void *),        \
	   void *arg))                                                        \
	X(malloc, void *, (size_t n))                                         \
	X(calloc, void *, (size_t k, size_t n))                               \
	X(realloc, void *, (void *p, size_t n))                               \
	X(strdup, char *, (const char *s))                                    \
	X(strndup, char *, (const char *s, size_t n))                         \
	X(stat, int, (const char *p, struct stat *st))                        \
	X(flock, int, (int fd, int op))

#define IPC__FAULT_DECLARE(name, type, params) type ipc__fi_##name params;
IPC__FAULT_CALLS(IPC__FAULT_DECLARE)
#undef IPC__FAULT_DECLARE

/* fault.c itself wants the declarations only. */
#ifndef IPC_FAULT_WRAPPERS

#define open            ipc__fi_open
#define openat          ipc__fi_openat
#define shm_open        ipc__fi_shm_open
#define memfd_create    ipc__fi_memfd_create
#define mmap            ipc__fi_mmap
#define ftruncate       ipc__fi_ftruncate
#define fallocate       ipc__fi_fallocate
#define posix_fallocate ipc__fi_posix_fallocate
#define fsync           ipc__fi_fsync
#define fdatasync       ipc__fi_fdatasync
#define msync           ipc__fi_msync
#define socket          ipc__fi_socket
#define socketpair      ipc__fi_socketpair
#define bind            ipc__fi_bind
#define connect         ipc__fi_connect
#define accept          ipc__fi_accept
#define accept4         ipc__fi_accept4
#define sendmsg         ipc__fi_sendmsg
#define recvmsg         ipc__fi_recvmsg
#define send            ipc__fi_send
#define recv            ipc__fi_recv
#define sendto          ipc__fi_sendto
#define read            ipc__fi_read
#define write           ipc__fi_write
#define readv           ipc__fi_readv
#define writev          ipc__fi_writev
#define pread           ipc__fi_pread
#define pwrite          ipc__fi_pwrite
#define close           ipc__fi_close
#define syscall         ipc__fi_syscall
#define semop           ipc__fi_semop
#define semtimedop      ipc__fi_semtimedop
#define semget          ipc__fi_semget
#define msgsnd          ipc__fi_msgsnd
#define msgrcv          ipc__fi_msgrcv
#define msgget          ipc__fi_msgget
#define shmget          ipc__fi_shmget
#define shmat           ipc__fi_shmat
#define mq_open         ipc__fi_mq_open
#define mq_send         ipc__fi_mq_send
#define mq_timedsend    ipc__fi_mq_timedsend
#define mq_receive      ipc__fi_mq_receive
#define mq_timedreceive ipc__fi_mq_timedreceive
#define epoll_create1   ipc__fi_epoll_create1
#define epoll_ctl       ipc__fi_epoll_ctl
#define epoll_wait      ipc__fi_epoll_wait
#define eventfd         ipc__fi_eventfd
#define signalfd        ipc__fi_signalfd
#define poll            ipc__fi_poll
#define pipe2           ipc__fi_pipe2
#define mkfifo          ipc__fi_mkfifo
#define mkdir           ipc__fi_mkdir
#define fstat           ipc__fi_fstat
#define lstat           ipc__fi_lstat
#define fcntl           ipc__fi_fcntl
#define fchmod          ipc__fi_fchmod
#define getsockopt      ipc__fi_getsockopt
#define setsockopt      ipc__fi_setsockopt
#define getsockname     ipc__fi_getsockname
#define getpeername     ipc__fi_getpeername
#define kill            ipc__fi_kill
#define sigqueue        ipc__fi_sigqueue
#define getrandom       ipc__fi_getrandom
#define pthread_create  ipc__fi_pthread_create
#define malloc          ipc__fi_malloc
#define calloc          ipc__fi_calloc
#define realloc         ipc__fi_realloc
#define strdup          ipc__fi_strdup
#define strndup         ipc__fi_strndup
#define stat(p, st)     ipc__fi_stat(p, st)
#define flock(fd, op)   ipc__fi_flock(fd, op)
#endif /* IPC_FAULT_WRAPPERS */

#endif /* IPC_CORE_FAULT_REDIRECT_H */
