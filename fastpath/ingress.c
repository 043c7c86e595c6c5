/*
 * ingress.c - the socket ingress backends: io_uring (default) and recvmmsg.
 *
 * Both own one UDP socket and do the same three things per pass: receive a
 * burst, hand it to fp_ingest_burst(), send the acknowledgements the writer
 * has released since. io_uring keeps one multishot recvmsg armed on the
 * socket, with datagrams landing in a ring of provided buffers, so a busy
 * socket costs no system call per datagram; acks go out as a batch of
 * sendmsg SQEs submitted with the next wait. recvmmsg is the fallback for
 * kernels or sandboxes that refuse io_uring: the same pass with recvmmsg and
 * sendmmsg. The socket is AF_INET6 dual-stack, so IPv4 peers appear as
 * v4-mapped addresses and struct fp_peer has one form.
 */
#include "fastpath/fastpath.h"

#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BURST_MAX 64u          /* datagrams per ingest burst */
#define ACK_BATCH_MAX 256u     /* acks per send batch */
#define RX_BUFFERS 2048u       /* provided buffers, power of two */
#define RX_BUFFER_BYTES 2048u  /* recvmsg_out + sockaddr_in6 + FP_FRAME_BYTES_MAX, and more */
#define URING_ENTRIES 512u
#define WAIT_MS 50             /* how often a quiet loop looks at the stop flag */

_Static_assert((RX_BUFFERS & (RX_BUFFERS - 1)) == 0, "buffer ring size is a power of two");
_Static_assert(RX_BUFFER_BYTES >= sizeof(struct io_uring_recvmsg_out) + sizeof(struct sockaddr_in6) +
		       FP_FRAME_BYTES_MAX + 1,
	       "a buffer holds the largest frame plus one byte, so oversized frames are seen as such");
_Static_assert(ACK_BATCH_MAX + 4 <= URING_ENTRIES, "a whole ack batch fits the submission queue");

enum { TAG_RECV = 1, TAG_POLL_ACKS = 2, TAG_SEND = 3 };

/* Open the UDP socket: dual-stack, large receive buffer. Returns fd or -errno. */
static int socket_open(const char *addr, uint16_t port)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	struct in_addr v4;
	if (inet_pton(AF_INET, addr, &v4) == 1) {
		sa.sin6_addr.s6_addr[10] = 0xff;
		sa.sin6_addr.s6_addr[11] = 0xff;
		memcpy(&sa.sin6_addr.s6_addr[12], &v4, 4);
	} else if (inet_pton(AF_INET6, addr, &sa.sin6_addr) != 1) {
		fprintf(stderr, "tapgate: listen address '%s' is not an IPv4 or IPv6 address\n", addr);
		return -EINVAL;
	}
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int off = 0, bytes = 32 << 20;
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	/* Root may exceed rmem_max; otherwise take what the kernel allows. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) != 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int err = -errno;
		fprintf(stderr, "tapgate: cannot bind UDP %s:%u: %s\n", addr, port, strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

static void acks_eventfd_clear(struct fp_pipeline *p)
{
	uint64_t v;
	(void)!read(fp_pipeline_ack_eventfd(p), &v, sizeof(v));
}

/* Publish this thread's CPU time (a system call: every 16th loop, and at the end). */
static void busy_publish(struct fp_counters *ctr, unsigned *loops, bool now)
{
	if (!now && ((*loops)++ & 15u) != 0)
		return;
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
		atomic_store_explicit(&ctr->ingress_busy_ns, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
				      memory_order_relaxed);
}

/* ------------------------------------------------------------- recvmmsg */

struct mmsg_state {
	struct mmsghdr rx_msgs[BURST_MAX];
	struct iovec rx_iov[BURST_MAX];
	struct sockaddr_in6 rx_names[BURST_MAX];
	uint8_t rx_bytes[BURST_MAX][FP_FRAME_BYTES_MAX + 1];
	struct fp_rx rx[BURST_MAX];
	struct mmsghdr tx_msgs[ACK_BATCH_MAX];
	struct iovec tx_iov[ACK_BATCH_MAX];
};

static void mmsg_send_acks(struct fp_pipeline *p, int fd, struct mmsg_state *s, struct fp_counters *ctr)
{
	const struct fp_ack_out *acks[ACK_BATCH_MAX];
	unsigned n = fp_ingest_acks_peek(p, acks, ACK_BATCH_MAX);
	for (unsigned i = 0; i < n; i++) {
		s->tx_iov[i] = (struct iovec){(void *)acks[i]->bytes, acks[i]->len};
		s->tx_msgs[i].msg_hdr = (struct msghdr){
			.msg_name = (void *)&acks[i]->peer.addr, .msg_namelen = sizeof(acks[i]->peer.addr),
			.msg_iov = &s->tx_iov[i], .msg_iovlen = 1};
	}
	unsigned sent = 0;
	while (sent < n) {
		int rc = sendmmsg(fd, s->tx_msgs + sent, n - sent, 0);
		if (rc <= 0) {
			/* An ack that cannot leave is as good as lost: the validator retransmits. */
			atomic_fetch_add_explicit(&ctr->acks_send_errors, 1, memory_order_relaxed);
			sent++;
			continue;
		}
		sent += (unsigned)rc;
	}
	fp_ingest_acks_release(p, n);
}

static int mmsg_run(struct fp_pipeline *p, int fd, volatile sig_atomic_t *stop, struct fp_counters *ctr)
{
	struct mmsg_state *s = calloc(1, sizeof(*s));
	bool stopping = false;
	unsigned loops = 0;
	if (s == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < BURST_MAX; i++) {
		s->rx_iov[i] = (struct iovec){s->rx_bytes[i], sizeof(s->rx_bytes[i])};
		s->rx_msgs[i].msg_hdr = (struct msghdr){.msg_iov = &s->rx_iov[i], .msg_iovlen = 1};
	}
	while (!fp_ingress_done(p, stop, &stopping)) {
		struct pollfd pfd[2] = {{.fd = fd, .events = stopping ? 0 : POLLIN},
					{.fd = fp_pipeline_ack_eventfd(p), .events = POLLIN}};
		poll(pfd, 2, WAIT_MS);
		if (pfd[1].revents & POLLIN)
			acks_eventfd_clear(p);
		int n = 0;
		if (!stopping) {
			for (unsigned i = 0; i < BURST_MAX; i++) {
				s->rx_msgs[i].msg_hdr.msg_name = &s->rx_names[i];
				s->rx_msgs[i].msg_hdr.msg_namelen = sizeof(s->rx_names[i]);
			}
			n = recvmmsg(fd, s->rx_msgs, BURST_MAX, MSG_DONTWAIT, NULL);
		}
		for (int i = 0; i < n; i++) {
			s->rx[i].data = s->rx_bytes[i];
			s->rx[i].len = s->rx_msgs[i].msg_len;
			s->rx[i].peer.addr = s->rx_names[i];
		}
		if (n > 0)
			fp_ingest_burst(p, s->rx, (unsigned)n);
		mmsg_send_acks(p, fd, s, ctr);
		busy_publish(ctr, &loops, false);
	}
	busy_publish(ctr, &loops, true);
	free(s);
	return 0;
}

/* -------------------------------------------------------------- io_uring */

struct uring_state {
	struct io_uring ring;
	struct io_uring_buf_ring *buf_ring;
	size_t buf_ring_bytes;
	uint8_t *buffers;
	struct msghdr recv_msg; /* template for the multishot recvmsg */
	bool recv_armed, poll_armed;
	/* the ack batch in flight */
	struct msghdr send_msgs[ACK_BATCH_MAX];
	struct iovec send_iov[ACK_BATCH_MAX];
	unsigned sends_total, sends_inflight;
	struct fp_rx rx[BURST_MAX];
	uint16_t rx_bids[BURST_MAX];
};

static int uring_buffers_setup(struct uring_state *u)
{
	u->buf_ring_bytes = RX_BUFFERS * sizeof(struct io_uring_buf);
	u->buf_ring = mmap(NULL, u->buf_ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (u->buf_ring == MAP_FAILED)
		return -ENOMEM;
	u->buffers = malloc((size_t)RX_BUFFERS * RX_BUFFER_BYTES);
	if (u->buffers == NULL)
		return -ENOMEM;
	struct io_uring_buf_reg reg = {
		.ring_addr = (unsigned long)u->buf_ring, .ring_entries = RX_BUFFERS, .bgid = 0};
	int rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
	if (rc != 0)
		return rc;
	io_uring_buf_ring_init(u->buf_ring);
	for (unsigned i = 0; i < RX_BUFFERS; i++)
		io_uring_buf_ring_add(u->buf_ring, u->buffers + (size_t)i * RX_BUFFER_BYTES,
				      RX_BUFFER_BYTES, (unsigned short)i, io_uring_buf_ring_mask(RX_BUFFERS), (int)i);
	io_uring_buf_ring_advance(u->buf_ring, RX_BUFFERS);
	return 0;
}

static int uring_setup(struct uring_state *u)
{
	struct io_uring_params params = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN};
	int rc = io_uring_queue_init_params(URING_ENTRIES, &u->ring, &params);
	if (rc == -EINVAL) { /* an older kernel without those flags */
		memset(&params, 0, sizeof(params));
		rc = io_uring_queue_init_params(URING_ENTRIES, &u->ring, &params);
	}
	if (rc != 0)
		return rc;
	rc = uring_buffers_setup(u);
	if (rc != 0) {
		io_uring_queue_exit(&u->ring);
		return rc;
	}
	u->recv_msg.msg_namelen = sizeof(struct sockaddr_in6);
	return 0;
}

static void uring_teardown(struct uring_state *u)
{
	io_uring_queue_exit(&u->ring);
	if (u->buf_ring != NULL && u->buf_ring != MAP_FAILED)
		munmap(u->buf_ring, u->buf_ring_bytes);
	free(u->buffers);
}

static struct io_uring_sqe *sqe_get(struct uring_state *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	if (sqe == NULL) { /* full: push what is queued and take the freed entry */
		io_uring_submit(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
	}
	return sqe;
}

static void uring_arm(struct uring_state *u, int fd, int efd, bool stopping)
{
	struct io_uring_sqe *sqe;
	if (!u->recv_armed && !stopping && (sqe = sqe_get(u)) != NULL) {
		io_uring_prep_recvmsg_multishot(sqe, fd, &u->recv_msg, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = 0;
		io_uring_sqe_set_data64(sqe, TAG_RECV);
		u->recv_armed = true;
	}
	if (!u->poll_armed && (sqe = sqe_get(u)) != NULL) {
		io_uring_prep_poll_add(sqe, efd, POLLIN);
		io_uring_sqe_set_data64(sqe, TAG_POLL_ACKS);
		u->poll_armed = true;
	}
}

/* Turn a multishot recvmsg completion into an fp_rx. Returns true if it holds a datagram. */
static bool uring_recv_cqe(struct uring_state *u, const struct io_uring_cqe *cqe, unsigned *nrx)
{
	if (!(cqe->flags & IORING_CQE_F_MORE))
		u->recv_armed = false; /* ended (ENOBUFS, error): re-armed after this pass */
	if (cqe->res < 0 || !(cqe->flags & IORING_CQE_F_BUFFER))
		return false;
	uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
	uint8_t *buf = u->buffers + (size_t)bid * RX_BUFFER_BYTES;
	u->rx_bids[*nrx] = bid;
	struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(buf, cqe->res, &u->recv_msg);
	struct fp_rx *rx = &u->rx[*nrx];
	(*nrx)++;
	if (o == NULL || o->namelen > sizeof(rx->peer.addr)) {
		*rx = (struct fp_rx){.data = buf, .len = 0};
		return true;
	}
	memset(&rx->peer, 0, sizeof(rx->peer));
	memcpy(&rx->peer.addr, io_uring_recvmsg_name(o), o->namelen);
	rx->data = io_uring_recvmsg_payload(o, &u->recv_msg);
	/* A truncated datagram was longer than any frame: report its full length. */
	rx->len = (o->flags & MSG_TRUNC) ? FP_FRAME_BYTES_MAX + 1u
					 : io_uring_recvmsg_payload_length(o, cqe->res, &u->recv_msg);
	return true;
}

static void uring_buffers_recycle(struct uring_state *u, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		io_uring_buf_ring_add(u->buf_ring, u->buffers + (size_t)u->rx_bids[i] * RX_BUFFER_BYTES,
				      RX_BUFFER_BYTES, u->rx_bids[i], io_uring_buf_ring_mask(RX_BUFFERS), (int)i);
	io_uring_buf_ring_advance(u->buf_ring, (int)n);
}

/* When the last batch has left, release it and queue the next one. */
static void uring_send_acks(struct fp_pipeline *p, struct uring_state *u, int fd)
{
	if (u->sends_inflight != 0)
		return;
	if (u->sends_total != 0) {
		fp_ingest_acks_release(p, u->sends_total);
		u->sends_total = 0;
	}
	const struct fp_ack_out *acks[ACK_BATCH_MAX];
	unsigned n = fp_ingest_acks_peek(p, acks, ACK_BATCH_MAX);
	for (unsigned i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = sqe_get(u);
		if (sqe == NULL) {
			n = i;
			break;
		}
		u->send_iov[i] = (struct iovec){(void *)acks[i]->bytes, acks[i]->len};
		u->send_msgs[i] = (struct msghdr){
			.msg_name = (void *)&acks[i]->peer.addr, .msg_namelen = sizeof(acks[i]->peer.addr),
			.msg_iov = &u->send_iov[i], .msg_iovlen = 1};
		io_uring_prep_sendmsg(sqe, fd, &u->send_msgs[i], 0);
		io_uring_sqe_set_data64(sqe, TAG_SEND);
	}
	u->sends_total = u->sends_inflight = n;
}

/* Handle up to a burst of completions. Returns how many datagrams were ingested. */
static unsigned uring_pass(struct fp_pipeline *p, struct uring_state *u, int fd, struct fp_counters *ctr)
{
	struct io_uring_cqe *cqes[BURST_MAX];
	unsigned n = io_uring_peek_batch_cqe(&u->ring, cqes, BURST_MAX), nrx = 0;
	for (unsigned i = 0; i < n; i++) {
		switch (io_uring_cqe_get_data64(cqes[i])) {
		case TAG_RECV:
			uring_recv_cqe(u, cqes[i], &nrx);
			break;
		case TAG_POLL_ACKS:
			u->poll_armed = false;
			acks_eventfd_clear(p);
			break;
		case TAG_SEND:
			if (cqes[i]->res < 0)
				atomic_fetch_add_explicit(&ctr->acks_send_errors, 1, memory_order_relaxed);
			u->sends_inflight--;
			break;
		}
	}
	io_uring_cq_advance(&u->ring, n);
	if (nrx > 0) {
		fp_ingest_burst(p, u->rx, nrx);
		uring_buffers_recycle(u, nrx);
	}
	uring_send_acks(p, u, fd);
	return nrx;
}

static int uring_run(struct fp_pipeline *p, struct uring_state *u, int fd, volatile sig_atomic_t *stop,
		     struct fp_counters *ctr)
{
	bool stopping = false;
	unsigned loops = 0;
	int efd = fp_pipeline_ack_eventfd(p);
	while (!fp_ingress_done(p, stop, &stopping)) {
		uring_arm(u, fd, efd, stopping);
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = {0, WAIT_MS * 1000000LL};
		int rc = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
		if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY) {
			fprintf(stderr, "tapgate: io_uring wait failed: %s\n", strerror(-rc));
			return rc;
		}
		/* Drain the completion queue in bursts before waiting again. */
		for (unsigned passes = 0; passes < URING_ENTRIES; passes++)
			if (uring_pass(p, u, fd, ctr) == 0 && io_uring_cq_ready(&u->ring) == 0)
				break;
		uring_send_acks(p, u, fd);
		busy_publish(ctr, &loops, false);
	}
	busy_publish(ctr, &loops, true);
	return 0;
}

int fp_ingress_run(struct fp_pipeline *p, enum fp_ingress_kind kind, const char *addr, uint16_t port,
		   volatile sig_atomic_t *stop, struct fp_counters *ctr)
{
	int fd = socket_open(addr, port);
	if (fd < 0)
		return fd;
	int rc;
	if (kind == FP_INGRESS_IO_URING) {
		struct uring_state *u = calloc(1, sizeof(*u));
		rc = u ? uring_setup(u) : -ENOMEM;
		if (rc == 0) {
			fprintf(stderr, "tapgate: ingress io_uring (multishot recvmsg, %u provided buffers) on %s:%u\n",
				RX_BUFFERS, addr, port);
			atomic_store(&ctr->ingress_ready, 1); /* /healthz: receiving */
			rc = uring_run(p, u, fd, stop, ctr);
			uring_teardown(u);
			free(u);
			close(fd);
			return rc;
		}
		free(u);
		fprintf(stderr, "tapgate: io_uring unavailable (%s); falling back to recvmmsg\n",
			strerror(-rc));
	}
	fprintf(stderr, "tapgate: ingress recvmmsg on %s:%u\n", addr, port);
	atomic_store(&ctr->ingress_ready, 1);
	rc = mmsg_run(p, fd, stop, ctr);
	close(fd);
	return rc;
}
