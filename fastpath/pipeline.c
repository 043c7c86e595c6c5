/*
 * pipeline.c - the one data path: ingest -> job ring -> writer -> acks.
 *
 * fp_ingest_burst() runs on the ingress thread (any backend). For each
 * datagram it parses, authenticates and validates the frame, decides every
 * tap's status against the dedup set, copies the frame into the next slot of
 * the job ring and encodes its acknowledgement there. The writer thread takes
 * slots in order, appends new taps to the LMDB log (and conflicts to the
 * quarantine) and group-commits; only then does it advance `committed`, and
 * only slots below `committed` are handed back to the backend as acks. The
 * ring is FIFO and the writer commits in order, so a duplicate's original was
 * committed no later than the duplicate's own slot: acknowledging a slot
 * after its commit keeps the promise "acked means durable" for every status.
 *
 * Three counters index the ring (slot = index & mask), each written by one
 * thread: produced (ingress), committed (writer), released (ingress, after the
 * ack left). A full ring drops frames unacknowledged; validators retransmit.
 * Nothing here allocates after fp_pipeline_create().
 */
#include "fastpath/fastpath.h"
#include "store/store.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define PX_RELAXED memory_order_relaxed
#define ctr_add(field, n) atomic_fetch_add_explicit(&(field), (n), PX_RELAXED)
#define ctr_set(field, n) atomic_store_explicit(&(field), (n), PX_RELAXED)

enum job_action { ACTION_NONE = 0, ACTION_APPEND = 1, ACTION_QUARANTINE = 2 };

/* One frame in flight. Everything the writer and the ack need, no pointers out. */
struct fp_job {
	uint64_t recv_time_us;
	uint64_t recv_mono_us;
	struct fp_frame_header hdr;
	uint16_t frame_len;
	uint16_t rec_off[FP_TAPS_PER_FRAME_MAX];
	uint8_t action[FP_TAPS_PER_FRAME_MAX];
	struct fp_key key[FP_TAPS_PER_FRAME_MAX];
	uint64_t content[FP_TAPS_PER_FRAME_MAX];
	uint8_t stored, duplicate, conflict, rejected;
	struct fp_ack_out ack;
	uint8_t frame[FP_FRAME_BYTES_MAX];
};

struct validator_slot {
	struct st_validator_state s;
	bool used, dirty;
};
#define VALIDATOR_SLOTS (2 * FP_VALIDATORS_MAX)

struct fp_pipeline {
	/* shared, each written by one side */
	_Alignas(64) _Atomic uint64_t produced;
	_Alignas(64) _Atomic uint64_t committed;
	_Alignas(64) _Atomic bool writer_sleeping;
	_Atomic bool stopping;
	_Atomic bool writer_done;
	_Atomic int writer_status;
	/* ingress side */
	_Alignas(64) uint64_t released;
	uint64_t peeked;
	struct fp_dedup *dedup;
	const struct fp_keys *keys;
	/* deny list: entries below deny_count are written once, then only read */
	_Alignas(64) _Atomic uint32_t deny_count;
	struct fp_deny_entry *deny;
	/* writer side */
	_Alignas(64) uint64_t written;
	uint64_t seq_next;           /* seq of the next tap appended in this txn */
	uint64_t seq_committed_next; /* seq_next as of the last commit */
	uint64_t validators_flushed_mono_us;
	struct st_wtxn *txn;
	uint32_t txn_taps;
	uint64_t txn_first_mono_us;
	struct validator_slot *validators;
	uint32_t *validators_dirty; /* slot indexes touched since the last flush */
	uint32_t validators_dirty_count;
	bool writer_started;
	/* fixed */
	struct fp_job *jobs;
	uint64_t mask;
	struct fp_pipeline_options opt;
	struct st_env *env;
	struct fp_counters *ctr;
	int writer_efd, ack_efd;
	pthread_t writer;
};

/* ------------------------------------------------------------ ingest side */

static void drop(struct fp_pipeline *p, enum fp_drop why)
{
	ctr_add(p->ctr->frames_dropped[why], 1);
}

static enum fp_drop drop_for_error(int err)
{
	switch (err) {
	case FP_ERR_TRUNCATED: return FP_DROP_TRUNCATED;
	case FP_ERR_OVERSIZED: return FP_DROP_OVERSIZED;
	case FP_ERR_MAGIC: return FP_DROP_MAGIC;
	case FP_ERR_VERSION: return FP_DROP_VERSION;
	case FP_ERR_TYPE: return FP_DROP_TYPE;
	case FP_ERR_VALIDATOR: return FP_DROP_VALIDATOR;
	case FP_ERR_KEY: return FP_DROP_KEY;
	case FP_ERR_MAC: return FP_DROP_MAC;
	default: return FP_DROP_MALFORMED;
	}
}

/* Checks that need the gateway's clock and keys. Returns 0 or an fp_reason. */
static int tap_check(const struct fp_pipeline *p, const struct fp_tap *tap, uint64_t now_us)
{
	uint64_t skew_us = (uint64_t)p->opt.clock_skew_s * 1000000u;
	uint64_t window_us = (uint64_t)p->opt.dedup_window_s * 1000000u;
	if (tap->tap_time_us > now_us + skew_us)
		return FP_REASON_TIME_FUTURE;
	if (tap->tap_time_us + window_us < now_us)
		return FP_REASON_TIME_OLD;
	if (tap->amount_fen > p->opt.amount_fen_max)
		return FP_REASON_AMOUNT;
	if (tap->medium != FP_MEDIUM_QR)
		return 0;
	uint8_t signed_bytes[FP_QR_PAYLOAD_BYTES];
	fp_qr_signed_bytes(&tap->u.qr, signed_bytes);
	if (crypto_sign_verify_detached(tap->u.qr.signature, signed_bytes, sizeof(signed_bytes),
					p->opt.qr_public_key) != 0)
		return FP_REASON_QR_SIGNATURE;
	uint64_t tap_s = tap->tap_time_us / 1000000u;
	if (tap_s + p->opt.clock_skew_s < tap->u.qr.issued_at_s || tap_s > tap->u.qr.expires_at_s)
		return FP_REASON_QR_EXPIRED;
	return 0;
}

/* Decide one tap's status and what the writer does with it. */
static void tap_decide(struct fp_pipeline *p, struct fp_job *job, unsigned i, uint64_t now_us,
		       struct fp_tap_status *st)
{
	const uint8_t *rec = job->frame + job->rec_off[i];
	struct fp_tap tap;
	int reason = fp_tap_decode(rec, rec[0], &tap);
	if (reason == 0)
		reason = tap_check(p, &tap, now_us);
	*st = (struct fp_tap_status){FP_STATUS_REJECTED, (uint8_t)reason};
	if (reason != 0) {
		ctr_add(p->ctr->taps_rejected[reason < FP_REASON_COUNT ? reason : 0], 1);
		job->rejected++;
		return;
	}
	job->key[i] = fp_tap_identity(&tap, job->hdr.validator_id);
	job->content[i] = fp_tap_content(rec, rec[0], &job->hdr);
	switch (fp_dedup_insert(p->dedup, job->key[i], job->content[i],
				(uint32_t)(tap.tap_time_us / 1000000u), job->hdr.validator_id)) {
	case FP_DEDUP_NEW:
		*st = (struct fp_tap_status){FP_STATUS_STORED, 0};
		job->action[i] = ACTION_APPEND;
		job->stored++;
		return;
	case FP_DEDUP_DUPLICATE:
		*st = (struct fp_tap_status){FP_STATUS_DUPLICATE, 0};
		ctr_add(p->ctr->taps_duplicate, 1);
		job->duplicate++;
		return;
	case FP_DEDUP_OTHER_VALIDATOR:
		if (tap.medium == FP_MEDIUM_QR) {
			*st = (struct fp_tap_status){FP_STATUS_REJECTED, FP_REASON_QR_REUSE};
			ctr_add(p->ctr->taps_rejected[FP_REASON_QR_REUSE], 1);
			job->rejected++;
			return;
		}
		/* another validator sent a tap of this identity: a conflict */
		__attribute__((fallthrough));
	case FP_DEDUP_CONFLICT:
		*st = (struct fp_tap_status){FP_STATUS_CONFLICT, 0};
		job->action[i] = ACTION_QUARANTINE;
		ctr_add(p->ctr->taps_conflict, 1);
		job->conflict++;
		return;
	case FP_DEDUP_FULL:
		break;
	}
	/* The caller reserved room for the whole frame before deciding any tap. */
	abort();
}

/*
 * The key of a parsed datagram's validator, once its MAC verifies; NULL
 * (the datagram dropped and counted) if parsing failed (err), the key is
 * unknown or the MAC is wrong.
 */
static const uint8_t *authentic(struct fp_pipeline *p, const struct fp_rx *rx, int err, uint32_t validator_id,
				uint16_t key_id)
{
	const uint8_t *key = NULL;
	if (err == 0)
		key = fp_keys_find(p->keys, validator_id, key_id, &err);
	if (err == 0)
		err = fp_mac_verify(rx->data, rx->len, key);
	if (err != 0) {
		drop(p, drop_for_error(err));
		return NULL;
	}
	return key;
}

/*
 * A deny-list request: authenticated like a frame, answered with the changes
 * after the validator's version. It goes through the ring as a job with no
 * taps, so its reply leaves in order with the acknowledgements.
 */
static bool deny_one(struct fp_pipeline *p, const struct fp_rx *rx, uint64_t now_us, uint64_t mono_us,
		     uint64_t produced)
{
	struct fp_job *job = &p->jobs[produced & p->mask];
	struct fp_deny_request rq = {0};
	int err = fp_deny_request_parse(rx->data, rx->len, &rq);
	const uint8_t *key = authentic(p, rx, err, rq.validator_id, rq.key_id);
	if (key == NULL)
		return false;
	uint32_t have = atomic_load_explicit(&p->deny_count, memory_order_acquire), since = rq.since_version;
	struct fp_deny_reply rp = {.validator_id = rq.validator_id, .key_id = rq.key_id, .request_seq = rq.request_seq,
				   .gateway_time_us = now_us};
	if (since > have) { /* a list the gateway never had: start again */
		rp.flags |= FP_DENY_RESET;
		since = 0;
	}
	while (since + rp.count < have && rp.count < FP_DENY_ENTRIES_MAX) {
		rp.entries[rp.count] = p->deny[since + rp.count];
		rp.count++;
	}
	rp.version = since + rp.count;
	if (rp.version < have)
		rp.flags |= FP_DENY_MORE;
	memset(&job->hdr, 0, sizeof(job->hdr));
	job->hdr.validator_id = rq.validator_id;
	job->hdr.key_id = rq.key_id;
	job->frame_len = 0;
	job->recv_time_us = now_us;
	job->recv_mono_us = mono_us;
	job->stored = job->duplicate = job->conflict = job->rejected = 0;
	int len = fp_deny_reply_encode(&rp, key, job->ack.bytes, sizeof(job->ack.bytes));
	assert(len > 0);
	job->ack.len = (uint16_t)len;
	job->ack.peer = rx->peer;
	ctr_add(p->ctr->deny_requests, 1);
	return true;
}

int fp_pipeline_deny_append(struct fp_pipeline *p, uint32_t version, const struct fp_deny_entry *e)
{
	uint32_t n = atomic_load_explicit(&p->deny_count, memory_order_relaxed);
	if (version != n + 1)
		return FP_PIPE_ERR_OPTIONS;
	if (n == FP_DENY_CHANGES_MAX)
		return FP_PIPE_ERR_NOMEM;
	p->deny[n] = *e;
	atomic_store_explicit(&p->deny_count, n + 1, memory_order_release);
	ctr_set(p->ctr->deny_list_version, n + 1);
	return 0;
}

uint32_t fp_pipeline_deny_version(const struct fp_pipeline *p)
{
	return atomic_load_explicit(&p->deny_count, memory_order_acquire);
}

/* Authenticate one datagram and fill the job at the ring's head. Returns true if queued. */
static bool ingest_one(struct fp_pipeline *p, const struct fp_rx *rx, uint64_t now_us,
		       uint64_t mono_us, uint64_t produced)
{
	struct fp_job *job = &p->jobs[produced & p->mask];
	struct fp_tap_status st[FP_TAPS_PER_FRAME_MAX];
	int err = fp_frame_parse(rx->data, rx->len, &job->hdr, job->rec_off);
	const uint8_t *key = authentic(p, rx, err, job->hdr.validator_id, job->hdr.key_id);
	if (key == NULL)
		return false;
	/* Room for every tap, or none is decided: a half-inserted frame would
	 * turn the retransmission of an unstored tap into a "duplicate". */
	if (fp_dedup_count(p->dedup) + job->hdr.tap_count > p->opt.dedup_taps_max) {
		drop(p, FP_DROP_DEDUP_FULL);
		return false;
	}
	memcpy(job->frame, rx->data, rx->len);
	job->frame_len = (uint16_t)rx->len;
	job->recv_time_us = now_us;
	job->recv_mono_us = mono_us;
	job->stored = job->duplicate = job->conflict = job->rejected = 0;
	memset(job->action, 0, job->hdr.tap_count);
	for (unsigned i = 0; i < job->hdr.tap_count; i++)
		tap_decide(p, job, i, now_us, &st[i]);
	ctr_add(p->ctr->taps_received, job->hdr.tap_count);

	struct fp_ack_header ah = {
		.validator_id = job->hdr.validator_id, .key_id = job->hdr.key_id,
		.tap_count = job->hdr.tap_count, .frame_seq = job->hdr.frame_seq,
		.gateway_time_us = now_us,
		.denylist_version = atomic_load_explicit(&p->deny_count, memory_order_acquire),
	};
	int len = fp_ack_encode(&ah, st, key, job->ack.bytes, sizeof(job->ack.bytes));
	assert(len > 0);
	job->ack.len = (uint16_t)len;
	job->ack.peer = rx->peer;
	return true;
}

unsigned fp_ingest_burst(struct fp_pipeline *p, const struct fp_rx *rx, unsigned n)
{
	uint64_t now_us = fp_now_us(), mono_us = fp_mono_us();
	uint64_t produced = atomic_load_explicit(&p->produced, PX_RELAXED);
	uint64_t queued = 0, bytes = 0;
	bool stopping = atomic_load_explicit(&p->stopping, PX_RELAXED);

	for (unsigned i = 0; i < n; i++) {
		bytes += rx[i].len;
		bool deny = rx[i].len >= 4 && rx[i].data[3] == FP_TYPE_DENY_REQUEST;
		if (stopping) {
			drop(p, FP_DROP_STOPPING);
		} else if (produced - p->released >= p->mask + 1) {
			drop(p, FP_DROP_RING_FULL);
		} else if (deny ? deny_one(p, &rx[i], now_us, mono_us, produced)
				: ingest_one(p, &rx[i], now_us, mono_us, produced)) {
			produced++;
			queued++;
		}
	}
	ctr_add(p->ctr->frames_received, n);
	ctr_add(p->ctr->bytes_received, bytes);
	if (queued) {
		atomic_store_explicit(&p->produced, produced, memory_order_seq_cst);
		if (atomic_load_explicit(&p->writer_sleeping, memory_order_seq_cst)) {
			uint64_t one = 1;
			(void)!write(p->writer_efd, &one, sizeof(one));
		}
	}
	/* Bounded expiry work per burst: the sweep goes round the table over time. */
	uint32_t cutoff_s = (uint32_t)(now_us / 1000000u) - p->opt.dedup_window_s;
	uint64_t expired = fp_dedup_expire(p->dedup, cutoff_s, 64u * (n + 1));
	if (expired)
		ctr_add(p->ctr->dedup_expired, expired);
	ctr_set(p->ctr->dedup_entries, fp_dedup_count(p->dedup));
	return n;
}

unsigned fp_ingest_acks_peek(struct fp_pipeline *p, const struct fp_ack_out **acks, unsigned max)
{
	uint64_t committed = atomic_load_explicit(&p->committed, memory_order_acquire);
	unsigned n = 0;
	for (uint64_t i = p->released; i < committed && n < max; i++, n++)
		acks[n] = &p->jobs[i & p->mask].ack;
	p->peeked = p->released + n;
	return n;
}

void fp_ingest_acks_release(struct fp_pipeline *p, unsigned n)
{
	uint64_t mono_us = fp_mono_us();
	assert(p->released + n <= p->peeked);
	for (unsigned i = 0; i < n; i++) {
		const struct fp_job *job = &p->jobs[(p->released + i) & p->mask];
		uint64_t latency_us = mono_us - job->recv_mono_us;
		ctr_add(p->ctr->ack_latency_hist[fp_hist_bucket(latency_us)], 1);
		ctr_add(p->ctr->ack_latency_us_sum, latency_us);
	}
	p->released += n;
	ctr_add(p->ctr->frames_acked, n);
}

int fp_pipeline_ack_eventfd(const struct fp_pipeline *p)
{
	return p->ack_efd;
}

bool fp_pipeline_idle(const struct fp_pipeline *p)
{
	return p->released == atomic_load(&p->produced);
}

bool fp_ingress_done(struct fp_pipeline *p, volatile sig_atomic_t *stop, bool *stopping)
{
	if (*stop && !*stopping) {
		*stopping = true;
		fp_pipeline_stop(p);
	}
	return *stopping && fp_pipeline_writer_done(p) && fp_pipeline_idle(p);
}

bool fp_pipeline_writer_done(const struct fp_pipeline *p)
{
	return atomic_load(&p->writer_done);
}

int fp_pipeline_writer_status(const struct fp_pipeline *p)
{
	return atomic_load(&p->writer_status);
}

/* ------------------------------------------------------------ writer side */

static struct validator_slot *validator_slot(struct fp_pipeline *p, uint32_t validator_id)
{
	uint64_t i = (validator_id * 0x9E3779B97F4A7C15ull) >> 47; /* 17 bits */
	static_assert(VALIDATOR_SLOTS == 1u << 17, "validator table is 2^17 slots");
	for (unsigned probes = 0; probes < VALIDATOR_SLOTS; probes++) {
		struct validator_slot *v = &p->validators[i];
		if (!v->used || v->s.validator_id == validator_id) {
			if (!v->used)
				*v = (struct validator_slot){.s.validator_id = validator_id, .used = true};
			return v;
		}
		i = (i + 1) & (VALIDATOR_SLOTS - 1);
	}
	abort(); /* more validators than keys can exist */
}

static void validator_account(struct fp_pipeline *p, const struct fp_job *job)
{
	if (job->hdr.tap_count == 0)
		return; /* a deny-list request: no frame of the validator's */
	struct validator_slot *v = validator_slot(p, job->hdr.validator_id);
	if (v->s.first_seen_us == 0)
		v->s.first_seen_us = job->recv_time_us;
	v->s.last_seen_us = job->recv_time_us;
	v->s.key_id = job->hdr.key_id;
	if (job->hdr.frame_seq > v->s.last_frame_seq)
		v->s.last_frame_seq = job->hdr.frame_seq;
	v->s.taps_stored += job->stored;
	v->s.taps_duplicate += job->duplicate;
	v->s.taps_conflict += job->conflict;
	v->s.taps_rejected += job->rejected;
	if (!v->dirty) {
		v->dirty = true;
		p->validators_dirty[p->validators_dirty_count++] = (uint32_t)(v - p->validators);
	}
}

static int validator_load(void *arg, const struct st_validator_state *s)
{
	struct fp_pipeline *p = arg;
	validator_slot(p, s->validator_id)->s = *s;
	return 0;
}

/* Write the validators touched since the last flush into the open txn. */
static int validators_flush(struct fp_pipeline *p)
{
	for (uint32_t i = 0; i < p->validators_dirty_count; i++) {
		int rc = st_validator_put(p->txn, &p->validators[p->validators_dirty[i]].s);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static void validators_flushed(struct fp_pipeline *p)
{
	for (uint32_t i = 0; i < p->validators_dirty_count; i++)
		p->validators[p->validators_dirty[i]].dirty = false;
	p->validators_dirty_count = 0;
}

/* Put one job's taps into the open write txn. Returns 0 or an st_error. */
static int job_write(struct fp_pipeline *p, const struct fp_job *job)
{
	for (unsigned i = 0; i < job->hdr.tap_count; i++) {
		if (job->action[i] == ACTION_NONE)
			continue;
		const uint8_t *rec = job->frame + job->rec_off[i];
		struct st_tap_meta meta = {
			.recv_time_us = job->recv_time_us, .frame_seq = job->hdr.frame_seq,
			.id_lo = job->key[i].lo, .id_hi = job->key[i].hi,
			.content_hash = job->content[i], .validator_id = job->hdr.validator_id,
			.route_id = job->hdr.route_id, .vehicle_id = job->hdr.vehicle_id,
			.operator_id = job->hdr.operator_id, .record_len = rec[0],
		};
		int rc;
		if (p->txn == NULL) {
			rc = st_wtxn_begin(p->env, &p->txn);
			if (rc != 0)
				return rc;
			p->txn_first_mono_us = job->recv_mono_us;
		}
		if (job->action[i] == ACTION_APPEND) {
			rc = st_log_append(p->txn, p->seq_next, &meta, rec);
			if (rc != 0)
				return rc;
			p->seq_next++;
			p->txn_taps++;
		} else {
			rc = st_quarantine_put(p->txn, &meta, rec);
			if (rc != 0 && rc != ST_ERR_EXISTS)
				return rc;
		}
	}
	return 0;
}

/* Jobs below upto are durable: account them to their validators, release their acks. */
static void publish_committed(struct fp_pipeline *p, uint64_t upto)
{
	/* Accounting here, not when written, so a rewound batch is not counted twice. */
	for (uint64_t i = atomic_load_explicit(&p->committed, PX_RELAXED); i < upto; i++)
		validator_account(p, &p->jobs[i & p->mask]);
	atomic_store_explicit(&p->committed, upto, memory_order_release);
	uint64_t one = 1;
	(void)!write(p->ack_efd, &one, sizeof(one));
}

/* Commit the open txn. Returns 0 or an st_error (the txn is gone either way). */
static int batch_commit(struct fp_pipeline *p)
{
	uint64_t start_us = fp_mono_us();
	int rc = 0;
	/* Validator state is worth a random-key write once a second, and at the end. */
	bool flush_validators = start_us - p->validators_flushed_mono_us >= 1000000u ||
				atomic_load_explicit(&p->stopping, PX_RELAXED);
	if (flush_validators)
		rc = validators_flush(p);
	if (rc == 0)
		rc = st_wtxn_commit(p->txn);
	else
		st_wtxn_abort(p->txn);
	p->txn = NULL;
	if (rc != 0)
		return rc;
	uint64_t latency_us = fp_mono_us() - start_us;
	if (flush_validators) {
		validators_flushed(p);
		p->validators_flushed_mono_us = start_us;
	}
	ctr_add(p->ctr->commits, 1);
	ctr_add(p->ctr->commit_taps, p->txn_taps);
	ctr_add(p->ctr->taps_stored, p->txn_taps);
	ctr_add(p->ctr->commit_batch_hist[fp_hist_bucket(p->txn_taps)], 1);
	ctr_add(p->ctr->commit_latency_hist[fp_hist_bucket(latency_us)], 1);
	ctr_add(p->ctr->commit_latency_us_sum, latency_us);
	ctr_set(p->ctr->log_next_seq, p->seq_next);
	p->seq_committed_next = p->seq_next;
	p->txn_taps = 0;
	publish_committed(p, p->written);
	return 0;
}

/*
 * A batch failed: forget the txn and rewind to the last commit, so the same
 * jobs are written again. MAP_FULL grows the map first; other failures (disk
 * full, I/O errors) wait, doubling up to a second, and say so in the log.
 */
static void batch_failed(struct fp_pipeline *p, int rc, unsigned *failures)
{
	if (p->txn != NULL)
		st_wtxn_abort(p->txn);
	p->txn = NULL;
	p->txn_taps = 0;
	p->written = atomic_load_explicit(&p->committed, PX_RELAXED);
	p->seq_next = p->seq_committed_next;
	ctr_add(p->ctr->commit_failures, 1);
	if (rc == ST_ERR_MAP_FULL && st_env_grow(p->env) == 0) {
		ctr_add(p->ctr->map_grows, 1);
		ctr_set(p->ctr->map_size_bytes, st_env_map_size(p->env));
		fprintf(stderr, "tapgate: store map full, grown to %" PRIu64 " MiB\n",
			st_env_map_size(p->env) >> 20);
		return;
	}
	unsigned wait_ms = 10u << (*failures < 7 ? *failures : 7);
	if (wait_ms > 1000)
		wait_ms = 1000;
	(*failures)++;
	fprintf(stderr,
		"tapgate: store commit failed (%s), attempt %u; nothing acknowledged, retrying in %u ms\n",
		st_strerror(rc), *failures, wait_ms);
	struct timespec ts = {wait_ms / 1000, (long)(wait_ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Sleep until the ingress produces, or until timeout_us passes. */
static void writer_wait(struct fp_pipeline *p, uint64_t timeout_us)
{
	atomic_store_explicit(&p->writer_sleeping, true, memory_order_seq_cst);
	if (atomic_load_explicit(&p->produced, memory_order_seq_cst) == p->written &&
	    !atomic_load(&p->stopping)) {
		struct pollfd pfd = {.fd = p->writer_efd, .events = POLLIN};
		struct timespec ts = {(time_t)(timeout_us / 1000000u), (long)(timeout_us % 1000000u) * 1000};
		if (ppoll(&pfd, 1, &ts, NULL) > 0) {
			uint64_t v;
			(void)!read(p->writer_efd, &v, sizeof(v));
		}
	}
	atomic_store_explicit(&p->writer_sleeping, false, memory_order_seq_cst);
}

/* Write what the ring holds, up to one batch. Returns 0 or an st_error. */
static int writer_fill(struct fp_pipeline *p, uint64_t produced)
{
	while (p->written < produced && p->txn_taps < p->opt.commit_batch_taps) {
		const struct fp_job *job = &p->jobs[p->written & p->mask];
		int rc = job_write(p, job);
		if (rc != 0)
			return rc;
		p->written++;
		/* Nothing of this txn is pending: the job's originals are durable. */
		if (p->txn == NULL)
			publish_committed(p, p->written);
	}
	return 0;
}

static void *writer_main(void *arg)
{
	struct fp_pipeline *p = arg;
	unsigned failures = 0;
	uint64_t stop_failing_since_us = 0;

	for (;;) {
		uint64_t produced = atomic_load_explicit(&p->produced, memory_order_acquire);
		bool stopping = atomic_load(&p->stopping);
		int rc = writer_fill(p, produced);
		bool full = p->txn_taps >= p->opt.commit_batch_taps;
		bool ring_empty = p->written == produced;
		uint64_t waited_us = p->txn ? fp_mono_us() - p->txn_first_mono_us : 0;
		if (rc == 0 && p->txn != NULL &&
		    (full || stopping || (ring_empty && waited_us >= p->opt.commit_interval_us)))
			rc = batch_commit(p);
		if (rc != 0) {
			batch_failed(p, rc, &failures);
			if (stopping && stop_failing_since_us == 0)
				stop_failing_since_us = fp_mono_us();
			if (stopping && fp_mono_us() - stop_failing_since_us > 10000000u) {
				fprintf(stderr, "tapgate: giving up on the store while stopping: "
						"unacknowledged taps will be retransmitted\n");
				atomic_store(&p->writer_status, rc);
				break;
			}
			continue;
		}
		failures = 0;
		if (stopping && p->txn == NULL && p->written == atomic_load(&p->produced))
			break;
		if (p->written == atomic_load_explicit(&p->produced, memory_order_acquire)) {
			/* An open txn waits out the rest of its interval; an idle writer naps. */
			uint64_t wait_us = 100000u;
			if (p->txn != NULL)
				wait_us = waited_us < p->opt.commit_interval_us
						  ? p->opt.commit_interval_us - waited_us : 0;
			if (wait_us > 0)
				writer_wait(p, wait_us);
		}
	}
	atomic_store(&p->writer_done, true);
	uint64_t one = 1;
	(void)!write(p->ack_efd, &one, sizeof(one));
	return NULL;
}

/* ------------------------------------------------------- start-up, stop */

struct rebuild_state {
	struct fp_pipeline *p;
	uint64_t since_us;
	uint64_t taps;
	uint64_t started_us;
	int full;
};

static int rebuild_visit(void *arg, uint64_t seq, const struct st_tap_meta *meta,
			 const uint8_t *record)
{
	struct rebuild_state *r = arg;
	/* Every tap in the window was received after the window began. */
	if (meta->recv_time_us < r->since_us)
		return 1;
	uint64_t tap_time_us = fp_tap_time_us(record);
	struct fp_key key = {meta->id_lo, meta->id_hi};
	enum fp_dedup_result res = fp_dedup_insert(r->p->dedup, key, meta->content_hash,
						   (uint32_t)(tap_time_us / 1000000u), meta->validator_id);
	if (res == FP_DEDUP_FULL) {
		r->full = 1;
		return 1;
	}
	r->taps++;
	if (r->p->opt.log_rebuild_progress && r->taps % 2000000u == 0)
		fprintf(stderr, "tapgate: dedup rebuild: %" PRIu64 " taps (at seq %" PRIu64 ")\n",
			r->taps, seq);
	return 0;
}

/* Fill the dedup set from the log's recent window. Returns 0 or FP_PIPE_ERR_*. */
static int dedup_rebuild(struct fp_pipeline *p)
{
	struct rebuild_state r = {.p = p, .started_us = fp_mono_us()};
	r.since_us = fp_now_us() - (uint64_t)p->opt.dedup_window_s * 1000000u;
	int rc = st_log_scan(p->env, UINT64_MAX, true, rebuild_visit, &r);
	if (rc != 0) {
		fprintf(stderr, "tapgate: dedup rebuild: reading the log failed: %s\n", st_strerror(rc));
		return FP_PIPE_ERR_STORE;
	}
	if (r.full) {
		fprintf(stderr, "tapgate: dedup rebuild: more than dedup.taps_max=%" PRIu64
				" taps in the window; raise it\n", p->opt.dedup_taps_max);
		return FP_PIPE_ERR_OPTIONS;
	}
	if (p->opt.log_rebuild_progress)
		fprintf(stderr, "tapgate: dedup rebuilt: %" PRIu64 " taps in %.2f s\n", r.taps,
			(double)(fp_mono_us() - r.started_us) / 1e6);
	ctr_set(p->ctr->dedup_entries, fp_dedup_count(p->dedup));
	return 0;
}

static int pipeline_alloc(struct fp_pipeline *p)
{
	/* The ring is touched now, not on the first frames of a recovery storm. */
	p->jobs = calloc(p->opt.ring_frames, sizeof(*p->jobs));
	if (p->jobs != NULL) { /* a volatile write per page: a compiler may drop memset after calloc */
		volatile uint8_t *b = (volatile uint8_t *)p->jobs;
		for (size_t off = 0; off < p->opt.ring_frames * sizeof(*p->jobs); off += 4096)
			b[off] = 0;
	}
	p->validators = calloc(VALIDATOR_SLOTS, sizeof(*p->validators));
	p->validators_dirty = calloc(VALIDATOR_SLOTS, sizeof(*p->validators_dirty));
	p->deny = calloc(FP_DENY_CHANGES_MAX, sizeof(*p->deny)); /* untouched pages cost nothing */
	p->dedup = fp_dedup_create(p->opt.dedup_taps_max);
	p->writer_efd = eventfd(0, EFD_CLOEXEC);
	p->ack_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!p->jobs || !p->validators || !p->validators_dirty || !p->deny || !p->dedup || p->writer_efd < 0 ||
	    p->ack_efd < 0)
		return FP_PIPE_ERR_NOMEM;
	return 0;
}

int fp_pipeline_create(struct fp_pipeline **out, const struct fp_pipeline_options *opt,
		       const struct fp_keys *keys, struct st_env *env, struct fp_counters *ctr)
{
	if (opt->ring_frames == 0 || (opt->ring_frames & (opt->ring_frames - 1)) != 0 ||
	    opt->commit_batch_taps == 0 || opt->dedup_taps_max == 0)
		return FP_PIPE_ERR_OPTIONS;
	if (sodium_init() < 0)
		return FP_PIPE_ERR_NOMEM;
	struct fp_pipeline *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return FP_PIPE_ERR_NOMEM;
	p->opt = *opt;
	p->mask = opt->ring_frames - 1;
	p->keys = keys;
	p->env = env;
	p->ctr = ctr;
	p->writer_efd = p->ack_efd = -1;
	int rc = pipeline_alloc(p);
	if (rc == 0 && st_log_next_seq(env, &p->seq_next) != 0)
		rc = FP_PIPE_ERR_STORE;
	if (rc == 0 && st_validator_scan(env, validator_load, p) != 0)
		rc = FP_PIPE_ERR_STORE;
	if (rc == 0)
		rc = dedup_rebuild(p);
	p->seq_committed_next = p->seq_next;
	ctr_set(ctr->log_next_seq, p->seq_next);
	ctr_set(ctr->map_size_bytes, st_env_map_size(env));
	if (rc == 0 && pthread_create(&p->writer, NULL, writer_main, p) != 0)
		rc = FP_PIPE_ERR_THREAD;
	if (rc != 0) {
		fp_pipeline_destroy(p);
		return rc;
	}
	p->writer_started = true;
	pthread_setname_np(p->writer, "tapgate-writer");
	*out = p;
	return 0;
}

void fp_pipeline_stop(struct fp_pipeline *p)
{
	atomic_store(&p->stopping, true);
	uint64_t one = 1;
	(void)!write(p->writer_efd, &one, sizeof(one));
}

void fp_pipeline_destroy(struct fp_pipeline *p)
{
	if (p == NULL)
		return;
	if (p->writer_started) {
		fp_pipeline_stop(p);
		pthread_join(p->writer, NULL);
	}
	if (p->writer_efd >= 0)
		close(p->writer_efd);
	if (p->ack_efd >= 0)
		close(p->ack_efd);
	fp_dedup_free(p->dedup);
	free(p->validators_dirty);
	free(p->validators);
	free(p->deny);
	free(p->jobs);
	free(p);
}
