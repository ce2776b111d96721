// Linux calls that Glibc as imported by Swift does not expose (epoll, eventfd, timerfd, accept4,
// splice), plus errno access. Defined in shim.c, where _GNU_SOURCE is set.
#ifndef SWITCHYARD_CLINUX_H
#define SWITCHYARD_CLINUX_H
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>

typedef struct sy_epoll_event {
    uint32_t events;
    uint64_t data;
} __attribute__((packed)) sy_epoll_event;

// The epoll event bits are defined once, in Swift: Reactor's `PollEvents`.

int sy_epoll_create(void);
int sy_epoll_add(int epfd, int fd, uint32_t events, uint64_t data);
int sy_epoll_mod(int epfd, int fd, uint32_t events, uint64_t data);
int sy_epoll_del(int epfd, int fd);
int sy_epoll_wait(int epfd, sy_epoll_event *events, int maxevents, int timeout_ms);
int sy_eventfd(void);
int sy_accept4(int fd, struct sockaddr *addr, socklen_t *len);
ssize_t sy_splice(int fd_in, int fd_out, size_t len);
int sy_pipe2(int fds[2]);
int sy_errno(void);
uint64_t sy_monotonic_ms(void);
uint64_t sy_monotonic_ns(void);
int sy_set_nodelay(int fd);
/// 8 random bytes from the kernel (for seeding per-loop generators).
uint64_t sy_random_seed(void);
/// A 16 KiB scratch area owned by the calling thread (TLS gathers a head and body bytes into one
/// record there: one write instead of two).
void *sy_thread_scratch(void);
enum { SY_THREAD_SCRATCH_BYTES = 16384 };


// Relaxed atomic counters for statistics read by the control thread.
static inline void sy_counter_add(uint64_t *p, uint64_t v) { __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
static inline void sy_counter_sub(uint64_t *p, uint64_t v) { __atomic_fetch_sub(p, v, __ATOMIC_RELAXED); }
static inline uint64_t sy_counter_load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void sy_counter_store(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline uint64_t sy_counter_add_fetch(uint64_t *p, uint64_t v) { return __atomic_add_fetch(p, v, __ATOMIC_RELAXED); }
// A counter only its own event loop writes: a plain load and store (no locked instruction), each
// untorn, so another thread reading it sees an older or a newer value, never a mix.
static inline void sy_local_add(uint64_t *p, uint64_t v) {
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}
static inline void sy_local_sub(uint64_t *p, uint64_t v) {
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) - v, __ATOMIC_RELAXED);
}
#endif
