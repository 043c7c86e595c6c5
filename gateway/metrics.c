/*
 * metrics.c - the counters in Prometheus text format on a loopback HTTP port.
 *
 * libmicrohttpd serves GET /metrics (and /healthz) from its own thread; the
 * fast path never waits for it. Counters are relaxed atomics written by one
 * thread each (struct fp_counters), so a scrape reads them without locks and
 * may see one counter a few events ahead of another: that is fine for
 * monitoring and for the tests, which wait for the values they expect.
 *
 * Slow clients cannot stop a scrape. One thread multiplexes every connection
 * with epoll (no thread per connection, no select() and its 1024-descriptor
 * ceiling), so a client that sends its request a byte at a time costs a
 * descriptor and a little memory, never the thread. Each client address may
 * hold METRICS_CONNECTIONS_PER_IP connections (more are closed at once), a
 * connection idle for METRICS_TIMEOUT_S is closed, and the total is bounded
 * by METRICS_CONNECTIONS_MAX and by half the descriptor limit, whichever is
 * lower. A Prometheus server needs one connection per target; the bounds
 * leave room for a few scrapers and people with curl.
 *
 * Names follow Prometheus' conventions (promtool check metrics): base units
 * (_seconds, _bytes), _total on counters. Beside the counters a scrape reads
 * the process (/proc/self: the standard process_* metrics), the store (one
 * short read transaction: bytes used; the validators' last-seen times, for
 * validators seen and silent) and the health /healthz answers, as a gauge,
 * so that an alert needs no second probe.
 */
#include "gateway/gateway.h"
#include "proc/proc.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define METRICS_BYTES_MAX (256u * 1024u)
/* How long a scrape waits for the polling lcore's fresh snapshot of the port
 * statistics. The lcore answers within one pass (microseconds, or
 * dpdk.idle_sleep_us <= 100 ms when idle); the bound only matters when its
 * CPU is starved, and then the last periodic snapshot (<= 100 ms) is served. */
#define METRICS_PORT_STATS_WAIT_MS 250u
#define METRICS_TIMEOUT_S 5u              /* a connection with nothing sent or received this long is closed */
#define METRICS_CONNECTIONS_PER_IP 8u
#define METRICS_CONNECTIONS_MAX 1024u
#define METRICS_CONNECTION_MEMORY_BYTES 8192u /* per connection: the request and response headers */
#define METRICS_LOG_EVERY_S 10             /* libmicrohttpd's messages (refused connections...): one per 10 s */

_Static_assert(METRICS_CONNECTIONS_PER_IP < METRICS_CONNECTIONS_MAX, "one address cannot take every connection");
#define METRICS_FDS_COUNT_MAX 65536u /* process_open_fds stops counting here */
/* tapgate_validators_silent{minutes=...}: seen once, nothing since. */
static const unsigned silent_minutes[] = {5, 15, 60};
#define SILENT_BOUNDS (sizeof(silent_minutes) / sizeof(silent_minutes[0]))

/* What a scrape reads: the counters, and the store (NULL: no store figures). */
struct metrics_server {
	struct MHD_Daemon *daemon;
	struct fp_counters *ctr;
	struct st_env *env;
};

struct text {
	char *buf;
	size_t len;
};

static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(t->buf + t->len, METRICS_BYTES_MAX - t->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->len += (size_t)n < METRICS_BYTES_MAX - t->len ? (size_t)n : METRICS_BYTES_MAX - t->len - 1;
}

static uint64_t get(_Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static void counter(struct text *t, const char *name, const char *help, _Atomic uint64_t *v)
{
	put(t, "# HELP tapgate_%s %s\n# TYPE tapgate_%s counter\ntapgate_%s %llu\n", name, help, name,
	    name, (unsigned long long)get(v));
}

static void gauge(struct text *t, const char *name, const char *help, uint64_t v)
{
	put(t, "# HELP tapgate_%s %s\n# TYPE tapgate_%s gauge\ntapgate_%s %llu\n", name, help, name, name,
	    (unsigned long long)v);
}

/*
 * A histogram over power-of-two buckets: bucket b holds values below 2^(b+1),
 * counted in units and served divided by per_unit (1e6: microseconds counted,
 * seconds served). sum may be NULL.
 */
static void histogram(struct text *t, const char *name, const char *help, _Atomic uint64_t *buckets,
		      _Atomic uint64_t *sum, double per_unit)
{
	uint64_t cumulative = 0;
	put(t, "# HELP tapgate_%s %s\n# TYPE tapgate_%s histogram\n", name, help, name);
	for (unsigned b = 0; b < FP_HIST_BUCKETS; b++) {
		cumulative += get(&buckets[b]);
		put(t, "tapgate_%s_bucket{le=\"%.9g\"} %llu\n", name, (double)(1ull << (b + 1)) / per_unit,
		    (unsigned long long)cumulative);
	}
	put(t, "tapgate_%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cumulative);
	if (sum != NULL && per_unit == 1.0)
		put(t, "tapgate_%s_sum %llu\n", name, (unsigned long long)get(sum));
	else if (sum != NULL)
		put(t, "tapgate_%s_sum %.6f\n", name, (double)get(sum) / per_unit);
	put(t, "tapgate_%s_count %llu\n", name, (unsigned long long)cumulative);
}

static void labelled(struct text *t, const char *name, const char *help, const char *label,
		     _Atomic uint64_t *v, unsigned count, const char *(*label_name)(unsigned), unsigned first)
{
	put(t, "# HELP tapgate_%s %s\n# TYPE tapgate_%s counter\n", name, help, name);
	for (unsigned i = first; i < count; i++)
		put(t, "tapgate_%s{%s=\"%s\"} %llu\n", name, label, label_name(i),
		    (unsigned long long)get(&v[i]));
}

/* The DPDK endpoint and port: present only when the DPDK ingress runs. */
static void port_render(struct text *t, struct fp_counters *c)
{
	struct fp_port_stats *ps = &c->port;
	bool fresh = fp_port_stats_lock_fresh(ps, METRICS_PORT_STATS_WAIT_MS);
	if (!ps->present) {
		pthread_mutex_unlock(&ps->lock);
		return;
	}
	labelled(t, "net_dropped_total", "Packets the DPDK UDP/IPv4 endpoint dropped, by reason.", "reason",
		 c->net_dropped, FP_NET_DROP_COUNT, fp_net_drop_name, 0);
	counter(t, "net_arp_replies_total", "ARP requests for our address answered.", &c->net_arp_replies);
	counter(t, "net_icmp_echo_replies_total", "Pings answered.", &c->net_icmp_echo_replies);
	counter(t, "net_udp_no_checksum_total", "UDP datagrams without a checksum (allowed on IPv4).",
		&c->net_udp_no_checksum);
	counter(t, "net_tx_no_mbuf_total", "Ack bursts that waited for mbufs.", &c->net_tx_no_mbuf);
	const struct {
		const char *name, *help;
		uint64_t v;
	} st[] = {
		{"port_rx_packets_total", "Packets the port received (rte_eth_stats.ipackets).", ps->ipackets},
		{"port_tx_packets_total", "Packets the port sent (opackets).", ps->opackets},
		{"port_rx_bytes_total", "Bytes received (ibytes).", ps->ibytes},
		{"port_tx_bytes_total", "Bytes sent (obytes).", ps->obytes},
		{"port_rx_missed_total", "Packets the port dropped for lack of room (imissed).", ps->imissed},
		{"port_rx_errors_total", "Erroneous packets received (ierrors).", ps->ierrors},
		{"port_tx_errors_total", "Packets that failed to send (oerrors).", ps->oerrors},
		{"port_rx_nombuf_total", "Receive mbuf allocation failures (rx_nombuf).", ps->rx_nombuf},
	};
	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++)
		put(t, "# HELP tapgate_%s %s\n# TYPE tapgate_%s counter\ntapgate_%s{driver=\"%s\"} %llu\n",
		    st[i].name, st[i].help, st[i].name, st[i].name, ps->driver, (unsigned long long)st[i].v);
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	put(t, "# HELP tapgate_port_stats_age_seconds How old the port figures below are: taken for this "
	       "scrape, or the last periodic snapshot if the polling lcore did not answer in time.\n"
	       "# TYPE tapgate_port_stats_age_seconds gauge\ntapgate_port_stats_age_seconds %.6f\n",
	    ps->taken_mono_ns != 0 && now_ns > ps->taken_mono_ns ? (double)(now_ns - ps->taken_mono_ns) / 1e9 : 0.0);
	if (!fresh && ps->polling)
		atomic_fetch_add_explicit(&c->port_stats_stale, 1, memory_order_relaxed);
	counter(t, "port_stats_stale_total", "Scrapes the polling lcore did not answer within the wait, served "
		"the last periodic snapshot.", &c->port_stats_stale);
	put(t, "# HELP tapgate_port_xstat The port's extended statistics (rte_eth_xstats), by name.\n"
	       "# TYPE tapgate_port_xstat untyped\n");
	for (uint32_t i = 0; i < ps->xstats_count; i++)
		put(t, "tapgate_port_xstat{name=\"%s\"} %llu\n", ps->xstat_names[i],
		    (unsigned long long)ps->xstat_values[i]);
	pthread_mutex_unlock(&ps->lock);
}

/* The standard process metrics, from /proc/self (no figure is printed that cannot be read). */
static void process_render(struct text *t)
{
	long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	char stat[1024];
	FILE *f = fopen("/proc/self/stat", "r");
	size_t n = f != NULL ? fread(stat, 1, sizeof(stat) - 1, f) : 0;
	if (f != NULL)
		fclose(f);
	stat[n] = '\0';
	/* After the ")" that ends the command name: field 3 (state) on; utime and stime are fields
	 * 14 and 15, starttime 22, vsize 23, rss 24. */
	char *p = strrchr(stat, ')');
	unsigned long long utime, stime, start, vsize, rss;
	if (p != NULL && ticks > 0 &&
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu %llu %llu",
		   &utime, &stime, &start, &vsize, &rss) == 5) {
		put(t, "# HELP process_cpu_seconds_total User and system CPU time spent in seconds.\n"
		       "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n",
		    (double)(utime + stime) / (double)ticks);
		put(t, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
		       "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %llu\n",
		    rss * (unsigned long long)page);
		put(t, "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
		       "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %llu\n", vsize);
		unsigned long long boot = 0;
		char line[256];
		if ((f = fopen("/proc/stat", "r")) != NULL) {
			while (fgets(line, sizeof(line), f) != NULL && sscanf(line, "btime %llu", &boot) != 1)
				;
			fclose(f);
		}
		if (boot != 0)
			put(t, "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
			       "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n",
			    (double)boot + (double)start / (double)ticks);
	}
	DIR *d = opendir("/proc/self/fd");
	if (d != NULL) {
		unsigned fds = 0;
		while (fds < METRICS_FDS_COUNT_MAX && readdir(d) != NULL)
			fds++;
		closedir(d);
		put(t, "# HELP process_open_fds Number of open file descriptors.\n"
		       "# TYPE process_open_fds gauge\nprocess_open_fds %u\n", fds > 3 ? fds - 3 : 0); /* ., .., the DIR's own */
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		put(t, "# HELP process_max_fds Maximum number of open file descriptors.\n"
		       "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
}

struct validators_count {
	uint64_t now_us;
	uint64_t seen, silent[SILENT_BOUNDS];
};

static int validator_count(void *arg, const struct st_validator_state *v)
{
	struct validators_count *vc = arg;
	if (v->last_seen_us == 0)
		return 0;
	vc->seen++;
	for (unsigned i = 0; i < SILENT_BOUNDS; i++)
		if (v->last_seen_us + silent_minutes[i] * 60000000ull < vc->now_us)
			vc->silent[i]++;
	return 0;
}

/* The store's bytes used and its validators seen and silent (their state is written once a second). */
static void store_render(struct text *t, struct st_env *env)
{
	struct st_counts sc;
	if (env == NULL || st_counts(env, &sc) != 0)
		return;
	gauge(t, "store_used_bytes", "Bytes of the store's map in use (LMDB pages up to the last one written).",
	      sc.used_bytes);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct validators_count vc = {.now_us = (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u};
	if (st_validator_scan(env, validator_count, &vc) != 0)
		return;
	gauge(t, "validators_seen", "Validators that have sent at least one authenticated frame.", vc.seen);
	put(t, "# HELP tapgate_validators_silent Validators seen once that sent nothing for the last N minutes.\n"
	       "# TYPE tapgate_validators_silent gauge\n");
	for (unsigned i = 0; i < SILENT_BOUNDS; i++)
		put(t, "tapgate_validators_silent{minutes=\"%u\"} %llu\n", silent_minutes[i],
		    (unsigned long long)vc.silent[i]);
}

static size_t metrics_render(const struct metrics_server *m, char *buf)
{
	struct fp_counters *c = m->ctr;
	struct text t = {buf, 0};
	char why[GW_HEALTH_MAX];
	put(&t, "# HELP tapgate_build_info The version of tapgate (debian/changelog).\n"
		"# TYPE tapgate_build_info gauge\ntapgate_build_info{version=\"%s\"} 1\n", proc_version());
	gauge(&t, "healthy", "1 when /healthz answers ok; 0 while starting, while the store refuses commits, or "
	      "while the dedup set is full.", gw_health(c, why, sizeof(why)) ? 1 : 0);
	counter(&t, "frames_received_total", "Datagrams received.", &c->frames_received);
	counter(&t, "bytes_received_total", "Bytes received.", &c->bytes_received);
	counter(&t, "taps_received_total", "Taps in authenticated frames.", &c->taps_received);
	counter(&t, "taps_stored_total", "Taps committed durably to the log.", &c->taps_stored);
	counter(&t, "taps_duplicate_total", "Retransmitted taps acknowledged as duplicate.", &c->taps_duplicate);
	counter(&t, "taps_conflict_total", "Taps with a known identity and other content, quarantined.", &c->taps_conflict);
	counter(&t, "qr_signatures_verified_total", "QR code signatures verified (once per unique tap, never for a copy).",
		&c->qr_signatures_verified);
	uint64_t verdicts = get(&c->qr_verdicts); /* first: pending_added only grows, and never lags verdicts */
	gauge(&t, "qr_signatures_pending", "QR taps committed and acknowledged whose signature has no verdict yet "
	      "(gateway.qr_verify = after_commit): rating waits for them.", get(&c->qr_pending_added) - verdicts);
	counter(&t, "qr_forged_total", "QR taps found forged after their commit (after_commit): quarantined with "
		"reason qr_signature, never rated.", &c->qr_forged);
	gauge(&t, "qr_verified_seq", "The verified frontier: every QR tap of the log at or below it has its verdict.",
	      get(&c->qr_frontier));
	labelled(&t, "taps_rejected_total", "Taps rejected, by reason.", "reason", c->taps_rejected,
		 FP_REASON_COUNT, fp_reason_name, 1);
	labelled(&t, "frames_dropped_total", "Frames dropped without acknowledgement, by reason.", "reason",
		 c->frames_dropped, FP_DROP_COUNT, fp_drop_name, 0);
	counter(&t, "frames_acked_total", "Acknowledgements sent.", &c->frames_acked);
	counter(&t, "frames_busy_total", "Frames refused unread with a busy reply (shedding).", &c->frames_busy);
	counter(&t, "deny_requests_total", "Deny-list requests answered.", &c->deny_requests);
	gauge(&t, "deny_list_version", "Version of the deny list the gateway serves (0: none yet).",
	      get(&c->deny_list_version));
	counter(&t, "ack_send_errors_total", "Acknowledgements the socket refused.", &c->acks_send_errors);
	gauge(&t, "dedup_entries", "Identity keys in the dedup set.", get(&c->dedup_entries));
	gauge(&t, "dedup_capacity", "Identity keys the dedup set can hold (dedup.taps_max): new taps are dropped "
	      "beyond it.", get(&c->dedup_capacity));
	counter(&t, "dedup_expired_total", "Identity keys expired from the dedup set.", &c->dedup_expired);
	counter(&t, "key_reloads_total", "Reloads of the validator and QR platform keys put in force (SIGHUP).", &c->key_reloads);
	counter(&t, "commits_total", "Store transactions committed.", &c->commits);
	counter(&t, "commit_failures_total", "Store transactions that failed and were retried.", &c->commit_failures);
	gauge(&t, "commit_failing", "Commit attempts that failed in a row, not counting map growth (0: the last "
	      "commit succeeded).", get(&c->commit_failing));
	counter(&t, "map_grows_total", "Times the store map was grown.", &c->map_grows);
	gauge(&t, "map_size_bytes", "Store map size (it grows on demand).", get(&c->map_size_bytes));
	gauge(&t, "log_next_seq", "Sequence of the next tap appended to the log.", get(&c->log_next_seq));
	histogram(&t, "commit_batch_taps", "Taps per committed transaction.", c->commit_batch_hist, &c->commit_taps, 1.0);
	histogram(&t, "commit_latency_seconds", "Commit duration.", c->commit_latency_hist,
		  &c->commit_latency_us_sum, 1e6);
	histogram(&t, "ack_latency_seconds", "Receive to acknowledgement.", c->ack_latency_hist,
		  &c->ack_latency_us_sum, 1e6);
	put(&t, "# HELP tapgate_ingress_busy_seconds_total CPU time the ingress spent working (sockets: "
	    "its thread's CPU time; DPDK: polling passes that found work).\n"
	    "# TYPE tapgate_ingress_busy_seconds_total counter\ntapgate_ingress_busy_seconds_total %.6f\n",
	    (double)get(&c->ingress_busy_ns) / 1e9);
	port_render(&t, c);
	store_render(&t, m->env);
	process_render(&t);
	return t.len;
}

bool gw_health(const struct fp_counters *cc, char *why, size_t why_len)
{
	struct fp_counters *c = (struct fp_counters *)cc;
	if (atomic_load(&c->ingress_ready) == 0) {
		/* Up only once frames can be received: a load started on "ok" is never sent to nobody. */
		snprintf(why, why_len, "starting: the ingress is not receiving yet");
		return false;
	}
	uint64_t failing = atomic_load_explicit(&c->commit_failing, memory_order_relaxed);
	if (failing != 0) {
		snprintf(why, why_len, "failing: the store refuses to commit (%llu attempts in a row): nothing is "
			 "acknowledged", (unsigned long long)failing);
		return false;
	}
	/* Full: a frame of the most taps might not fit (the pipeline drops a frame that does not). */
	uint64_t entries = get(&c->dedup_entries), capacity = get(&c->dedup_capacity);
	if (capacity != 0 && entries + FP_TAPS_PER_FRAME_MAX > capacity) {
		snprintf(why, why_len, "failing: the dedup set is full (%llu of %llu): new taps are dropped",
			 (unsigned long long)entries, (unsigned long long)capacity);
		return false;
	}
	snprintf(why, why_len, "ok");
	return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	const struct metrics_server *m = cls;
	struct MHD_Response *resp;
	unsigned status = MHD_HTTP_OK;
	if (strcmp(method, "GET") != 0) {
		static const char msg[] = "method not allowed\n";
		resp = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
	} else if (strcmp(url, "/metrics") == 0) {
		char *buf = malloc(METRICS_BYTES_MAX);
		if (buf == NULL)
			return MHD_NO;
		size_t len = metrics_render(m, buf);
		resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
		MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
	} else if (strcmp(url, "/healthz") == 0) {
		char why[GW_HEALTH_MAX + 1];
		if (!gw_health(m->ctr, why, sizeof(why) - 1))
			status = MHD_HTTP_SERVICE_UNAVAILABLE;
		strcat(why, "\n");
		resp = MHD_create_response_from_buffer(strlen(why), why, MHD_RESPMEM_MUST_COPY);
	} else {
		static const char msg[] = "not found: try /metrics\n";
		resp = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_NOT_FOUND;
	}
	enum MHD_Result rc = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return rc;
}

/* libmicrohttpd's messages, at most one per METRICS_LOG_EVERY_S: a flood of
 * refused connections must not become a flood of log lines. Called from its
 * one thread (and from MHD_start_daemon before that thread exists). */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	static time_t last;
	static unsigned long suppressed;
	time_t now = time(NULL);
	if (last != 0 && now - last < METRICS_LOG_EVERY_S) {
		suppressed++;
		return;
	}
	if (suppressed > 0)
		fprintf(stderr, "tapgate: metrics: %lu more messages in the last %d s not shown\n", suppressed,
			(int)(now - last));
	fputs("tapgate: metrics: ", stderr);
	vfprintf(stderr, fmt, ap);
	last = now;
	suppressed = 0;
}

/* The total connection bound: METRICS_CONNECTIONS_MAX, or half the descriptor limit if that is lower. */
static unsigned connections_max(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur / 2 >= METRICS_CONNECTIONS_MAX)
		return METRICS_CONNECTIONS_MAX;
	unsigned half = (unsigned)(rl.rlim_cur / 2);
	return half > METRICS_CONNECTIONS_PER_IP ? half : METRICS_CONNECTIONS_PER_IP + 1;
}

void *gw_metrics_start(const char *addr, uint16_t port, const struct fp_counters *ctr, struct st_env *env)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "tapgate: metrics address '%s' is not an IPv4 address\n", addr);
		return NULL;
	}
	struct metrics_server *m = calloc(1, sizeof(*m));
	if (m == NULL) {
		fprintf(stderr, "tapgate: cannot serve metrics: out of memory\n");
		return NULL;
	}
	m->ctr = (struct fp_counters *)ctr;
	m->env = env;
	unsigned total = connections_max();
	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, port, NULL, NULL, on_request, m,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
		MHD_OPTION_CONNECTION_LIMIT, total, MHD_OPTION_PER_IP_CONNECTION_LIMIT, METRICS_CONNECTIONS_PER_IP,
		MHD_OPTION_CONNECTION_TIMEOUT, METRICS_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(size_t)METRICS_CONNECTION_MEMORY_BYTES, MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "tapgate: cannot serve metrics on %s:%u\n", addr, port);
		free(m);
		return NULL;
	}
	m->daemon = d;
	fprintf(stderr, "tapgate: metrics: at most %u connections, %u per client address, closed after %u s idle\n",
		total, METRICS_CONNECTIONS_PER_IP, METRICS_TIMEOUT_S);
	return m;
}

void gw_metrics_stop(void *server)
{
	struct metrics_server *m = server;
	if (m == NULL)
		return;
	MHD_stop_daemon(m->daemon);
	free(m);
}
