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
#include "fastpath/internal.h"
#include "base/assert.h"
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
#define BUSY_REPLIES_MAX 4096u /* busy replies waiting to leave, a power of two */
#define WRITER_NS_PER_TAP_START 1000u /* the writer's model before its first commit */
#define WRITER_COMMIT_US_START 1000u
#define WRITER_RATE_TAPS_START 4096u /* the weight of the starting guess, in taps */
#define ctr_add(field, n) atomic_fetch_add_explicit(&(field), (n), PX_RELAXED)
#define ctr_set(field, n) atomic_store_explicit(&(field), (n), PX_RELAXED)

/* What a reload replaces: the validators' keys and the QR platform's key. */
struct auth_update {
	struct fp_keys *keys;
	uint8_t qr_public_key[32];
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
	_Alignas(64) _Atomic uint64_t taps_committed; /* taps of the jobs below committed (writer) */
	/* The writer's cost model, which the ingress sheds load on: a fixed cost per commit (the fsync)
	 * and a cost per tap written. Kept apart, a slow fsync of a small txn is not taken for a slow tap. */
	_Atomic uint64_t writer_commit_us; /* moving average of one commit */
	_Atomic uint64_t writer_ns_per_tap; /* write work per tap, recent txns weighted by their taps */
	/* ingress side */
	_Alignas(64) uint64_t released;
	uint64_t peeked;
	uint64_t taps_produced; /* taps of every job queued to the writer */
	struct fp_dedup *dedup;
	struct fp_keys *keys;  /* owned; replaced between bursts by auth_take() */
	_Atomic(struct auth_update *) auth_next; /* a reload waiting for the next burst */
	struct fp_vf_stage *verifiers;
	struct fp_qv *qr_verdicts; /* the background verifier: verdicts after the commit */
	/* busy replies: they leave before the acks, without passing the writer */
	uint32_t busy_head, busy_tail, busy_peeked;
	struct fp_ack_out *busy;
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
	uint32_t txn_qr_unverified; /* after_commit: QR taps of this txn, their signatures not verified */
	uint64_t txn_first_mono_us;
	uint64_t txn_busy_us;  /* time the writer worked on this txn's jobs */
	uint64_t txn_job_taps; /* taps of those jobs, whatever their status */
	uint64_t rate_ns_sum, rate_taps_sum; /* decaying sums behind writer_ns_per_tap */
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

/*
 * The job at ring index `produced`, which the ingress is about to fill: the
 * ring must have room for it (fp_ingest_burst checks, before it calls the
 * ingest functions), or the writer's unreleased jobs would be overwritten.
 */
static struct fp_job *ring_head(struct fp_pipeline *p, uint64_t produced)
{
	TG_ASSERT_HOT(produced >= p->released && produced - p->released <= p->mask);
	return &p->jobs[produced & p->mask];
}

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

/* Checks that need the gateway's clock. Returns 0 or an fp_reason. */
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
	return 0;
}

/* A QR code's validity, checked after its signature (docs/PROTOCOL.md section 7). */
static int qr_expiry_check(const struct fp_pipeline *p, const struct fp_tap *tap)
{
	uint64_t tap_s = tap->tap_time_us / 1000000u;
	if (tap_s + p->opt.clock_skew_s < tap->u.qr.issued_at_s || tap_s > tap->u.qr.expires_at_s)
		return FP_REASON_QR_EXPIRED;
	return 0;
}

/* Screen tap i of a job: every check but the signature, and its identity. */
static void tap_screen(const struct fp_pipeline *p, struct fp_job *job, unsigned i, uint64_t now_us)
{
	const uint8_t *rec = job->frame + job->rec_off[i];
	struct fp_tap tap;
	int reason = fp_tap_decode(rec, rec[0], &tap);
	if (reason == 0)
		reason = tap_check(p, &tap, now_us);
	job->reason[i] = (uint8_t)reason;
	job->screen[i] = SCREEN_REJECT;
	if (reason != 0)
		return;
	job->key[i] = fp_tap_identity(&tap, job->hdr.validator_id);
	job->content[i] = fp_tap_content(rec, rec[0], &job->hdr);
	job->tap_time_s[i] = (uint32_t)(tap.tap_time_us / 1000000u);
	job->medium[i] = tap.medium;
	job->screen[i] = SCREEN_INSERT;
	if (tap.medium != FP_MEDIUM_QR)
		return;
	if (p->opt.qr_verify_after_commit) { /* the signature waits for the background verifier (verdict.c) */
		job->reason[i] = (uint8_t)qr_expiry_check(p, &tap);
		return;
	}
	if (fp_dedup_find(p->dedup, job->key[i], job->content[i], job->hdr.validator_id) == FP_DEDUP_DUPLICATE) {
		job->screen[i] = SCREEN_DUPLICATE;
		return;
	}
	job->screen[i] = SCREEN_VERIFY;
	job->reason[i] = (uint8_t)qr_expiry_check(p, &tap);
}

static void tap_reject(struct fp_pipeline *p, struct fp_job *job, unsigned reason, struct fp_tap_status *st)
{
	*st = (struct fp_tap_status){FP_STATUS_REJECTED, (uint8_t)reason};
	ctr_add(p->ctr->taps_rejected[reason < FP_REASON_COUNT ? reason : 0], 1);
	job->rejected++;
}

/* Decide one screened tap's status and what the writer does with it. */
static void tap_decide(struct fp_pipeline *p, struct fp_job *job, unsigned i, struct fp_tap_status *st)
{
	if (job->screen[i] == SCREEN_VERIFY && !job->signature_ok[i]) {
		tap_reject(p, job, FP_REASON_QR_SIGNATURE, st);
		return;
	}
	if (job->screen[i] == SCREEN_REJECT || job->reason[i] != 0) {
		tap_reject(p, job, job->reason[i], st);
		return;
	}
	enum fp_dedup_result res = FP_DEDUP_DUPLICATE;
	if (job->screen[i] != SCREEN_DUPLICATE)
		res = fp_dedup_insert(p->dedup, job->key[i], job->content[i], job->tap_time_s[i], job->hdr.validator_id);
	switch (res) {
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
		if (job->medium[i] == FP_MEDIUM_QR) {
			tap_reject(p, job, FP_REASON_QR_REUSE, st);
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
	struct fp_job *job = ring_head(p, produced);
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
	TG_ASSERT(len > 0);
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

/* Decide every tap of a screened (and verified) job and encode its ack. */
static void job_finish(struct fp_pipeline *p, struct fp_job *job)
{
	struct fp_tap_status st[FP_TAPS_PER_FRAME_MAX];
	job->stored = job->duplicate = job->conflict = job->rejected = 0;
	memset(job->action, 0, job->hdr.tap_count);
	for (unsigned i = 0; i < job->hdr.tap_count; i++)
		tap_decide(p, job, i, &st[i]);
	ctr_add(p->ctr->taps_received, job->hdr.tap_count);
	struct fp_ack_header ah = {
		.validator_id = job->hdr.validator_id, .key_id = job->hdr.key_id,
		.tap_count = job->hdr.tap_count, .frame_seq = job->hdr.frame_seq,
		.gateway_time_us = job->recv_time_us,
		.denylist_version = atomic_load_explicit(&p->deny_count, memory_order_acquire),
	};
	int len = fp_ack_encode(&ah, st, job->mac_key, job->ack.bytes, sizeof(job->ack.bytes));
	TG_ASSERT(len > 0);
	job->ack.len = (uint16_t)len;
	p->taps_produced += job->hdr.tap_count;
}

/* Room in the dedup set for every tap of the job, or none is decided: a half-inserted
 * frame would turn the retransmission of an unstored tap into a "duplicate". */
static bool dedup_room(struct fp_pipeline *p, const struct fp_job *job)
{
	if (fp_dedup_count(p->dedup) + job->hdr.tap_count <= p->opt.dedup_taps_max)
		return true;
	drop(p, FP_DROP_DEDUP_FULL);
	return false;
}

static bool busy_reply(struct fp_pipeline *p, const struct fp_frame_header *hdr, const uint8_t *key,
		       const struct fp_peer *peer, uint64_t backlog_us, uint64_t now_us);

/*
 * A frame with signatures to verify goes to the verifier stage, which has the
 * job back to the ingress (staged_collect) once they are verified. A copy of
 * a frame still there is dropped: the original's ack is coming.
 */
static void job_stage(struct fp_pipeline *p, const struct fp_job *job)
{
	if (fp_vf_holds(p->verifiers, job->hdr.validator_id, job->hdr.frame_seq)) {
		drop(p, FP_DROP_VERIFYING);
		return;
	}
	struct fp_job *slot = fp_vf_slot(p->verifiers);
	if (slot == NULL) { /* the stage is full: the frame waits for its turn at the validator */
		if (p->opt.shed_backlog_ms == 0 || !busy_reply(p, &job->hdr, job->mac_key, &job->ack.peer,
							      fp_vf_backlog_us(p->verifiers), job->recv_time_us))
			drop(p, FP_DROP_RING_FULL);
		return;
	}
	TG_ASSERT_HOT(job->frame_len <= sizeof(slot->frame));
	memcpy(slot, job, offsetof(struct fp_job, frame));
	memcpy(slot->frame, job->frame, job->frame_len);
	/* The key in force now: a reload may come before a verifier reaches the job. */
	memcpy(slot->qr_public_key, p->opt.qr_public_key, sizeof(slot->qr_public_key));
	fp_vf_submit(p->verifiers);
}

/* Authenticate and screen one datagram in the job at the ring's head. Returns true if queued there. */
static bool ingest_one(struct fp_pipeline *p, const struct fp_rx *rx, uint64_t now_us,
		       uint64_t mono_us, uint64_t produced)
{
	struct fp_job *job = ring_head(p, produced);
	int err = fp_frame_parse(rx->data, rx->len, &job->hdr, job->rec_off);
	const uint8_t *key = authentic(p, rx, err, job->hdr.validator_id, job->hdr.key_id);
	if (key == NULL)
		return false;
	/* fp_frame_parse refused anything above FP_FRAME_BYTES_MAX, the size of job->frame. */
	TG_ASSERT_HOT(rx->len <= sizeof(job->frame));
	memcpy(job->frame, rx->data, rx->len);
	memcpy(job->mac_key, key, FP_KEY_BYTES);
	job->frame_len = (uint16_t)rx->len;
	job->recv_time_us = now_us;
	job->recv_mono_us = mono_us;
	job->ack.peer = rx->peer;
	job->signatures = 0;
	for (unsigned i = 0; i < job->hdr.tap_count; i++) {
		tap_screen(p, job, i, now_us);
		job->signatures += job->screen[i] == SCREEN_VERIFY;
	}
	if (job->signatures > 0) {
		job_stage(p, job);
		return false;
	}
	if (!dedup_room(p, job))
		return false;
	job_finish(p, job);
	return true;
}

/* Tell the writer about jobs queued up to produced. */
static void produced_publish(struct fp_pipeline *p, uint64_t produced)
{
	atomic_store_explicit(&p->produced, produced, memory_order_seq_cst);
	if (atomic_load_explicit(&p->writer_sleeping, memory_order_seq_cst)) {
		uint64_t one = 1;
		(void)!write(p->writer_efd, &one, sizeof(one));
	}
}

/* Queue the verified jobs to the writer, as far as its ring has room. */
static void staged_collect(struct fp_pipeline *p)
{
	uint64_t produced = atomic_load_explicit(&p->produced, PX_RELAXED), queued = 0;
	bool stopping = atomic_load_explicit(&p->stopping, PX_RELAXED);
	struct fp_job *staged;
	while ((staged = fp_vf_ready(p->verifiers)) != NULL && produced - p->released <= p->mask) {
		if (stopping) {
			drop(p, FP_DROP_STOPPING);
		} else if (dedup_room(p, staged)) {
			struct fp_job *job = ring_head(p, produced);
			TG_ASSERT_HOT(staged->frame_len <= sizeof(job->frame));
			memcpy(job, staged, offsetof(struct fp_job, frame));
			memcpy(job->frame, staged->frame, staged->frame_len);
			job_finish(p, job);
			produced++;
			queued++;
		}
		fp_vf_collect(p->verifiers);
	}
	if (queued)
		produced_publish(p, produced);
}

/*
 * How long the writer needs for what is queued to it, in microseconds: one
 * commit per commit_batch_taps, and the work of each tap.
 */
static uint64_t writer_backlog_us(const struct fp_pipeline *p)
{
	uint64_t taps = p->taps_produced - atomic_load_explicit(&p->taps_committed, PX_RELAXED);
	if (taps == 0)
		return 0;
	uint64_t commits = (taps + p->opt.commit_batch_taps - 1) / p->opt.commit_batch_taps;
	return commits * atomic_load_explicit(&p->writer_commit_us, PX_RELAXED) +
	       taps * atomic_load_explicit(&p->writer_ns_per_tap, PX_RELAXED) / 1000u;
}

/* Answer a frame busy: come back in backlog_us. Returns false if the busy replies are all taken. */
static bool busy_reply(struct fp_pipeline *p, const struct fp_frame_header *hdr, const uint8_t *key,
		       const struct fp_peer *peer, uint64_t backlog_us, uint64_t now_us)
{
	if (p->busy_head - p->busy_tail == BUSY_REPLIES_MAX) {
		drop(p, FP_DROP_BUSY_FULL);
		return false;
	}
	uint64_t retry_ms = (backlog_us + 999u) / 1000u;
	if (retry_ms < p->opt.shed_backlog_ms)
		retry_ms = p->opt.shed_backlog_ms;
	struct fp_busy b = {.validator_id = hdr->validator_id, .key_id = hdr->key_id, .tap_count = hdr->tap_count,
			    .frame_seq = hdr->frame_seq, .gateway_time_us = now_us,
			    .retry_after_ms = (uint32_t)(retry_ms == 0 ? 1 : retry_ms < FP_RETRY_AFTER_MS_MAX
									   ? retry_ms : FP_RETRY_AFTER_MS_MAX)};
	struct fp_ack_out *out = &p->busy[p->busy_head & (BUSY_REPLIES_MAX - 1)];
	int len = fp_busy_encode(&b, key, out->bytes, sizeof(out->bytes));
	TG_ASSERT(len > 0);
	out->len = (uint16_t)len;
	out->peer = *peer;
	p->busy_head++;
	ctr_add(p->ctr->frames_busy, 1);
	return true;
}

/*
 * Shedding (docs/PROTOCOL.md section 6.1): when the work queued would not be
 * answered within shed_backlog_ms, a frame is refused before its MAC is
 * checked or a signature verified, with a busy reply that says when to come
 * back. A writer behind refuses every frame; a verifier stage behind, the
 * frames that carry QR codes. Returns true if the frame was refused.
 */
static bool shed(struct fp_pipeline *p, const struct fp_rx *rx, uint64_t writer_us, uint64_t verify_us,
		 uint64_t now_us)
{
	struct fp_frame_header hdr;
	uint16_t rec_off[FP_TAPS_PER_FRAME_MAX];
	if (fp_frame_parse(rx->data, rx->len, &hdr, rec_off) != 0)
		return false; /* counted by ingest_one */
	bool qr = false;
	for (unsigned i = 0; i < hdr.tap_count && !qr; i++)
		qr = rx->data[rec_off[i] + 1] == FP_MEDIUM_QR;
	uint64_t budget_us = (uint64_t)p->opt.shed_backlog_ms * 1000u;
	uint64_t backlog_us = writer_us > budget_us ? writer_us : qr ? verify_us : 0;
	if (backlog_us <= budget_us)
		return false;
	int why;
	const uint8_t *key = fp_keys_find(p->keys, hdr.validator_id, hdr.key_id, &why);
	if (key == NULL)
		return false;
	busy_reply(p, &hdr, key, &rx->peer, backlog_us, now_us);
	return true;
}

/*
 * Put a reload in force, on the ingress thread between two bursts: every
 * frame is checked whole against one key set, and the ingress is the only
 * reader of the keys, so the old set can be freed here at once.
 */
static void auth_take(struct fp_pipeline *p)
{
	if (atomic_load_explicit(&p->auth_next, PX_RELAXED) == NULL)
		return;
	struct auth_update *u = atomic_exchange(&p->auth_next, NULL);
	if (u == NULL)
		return;
	fp_keys_free(p->keys);
	p->keys = u->keys;
	memcpy(p->opt.qr_public_key, u->qr_public_key, sizeof(p->opt.qr_public_key));
	sodium_memzero(u, sizeof(*u));
	free(u);
	ctr_add(p->ctr->key_reloads, 1);
}

int fp_pipeline_auth_replace(struct fp_pipeline *p, struct fp_keys *keys, const uint8_t qr_public_key[32])
{
	struct auth_update *u = calloc(1, sizeof(*u));
	if (u == NULL) {
		fp_keys_free(keys);
		return FP_PIPE_ERR_NOMEM;
	}
	u->keys = keys;
	memcpy(u->qr_public_key, qr_public_key, sizeof(u->qr_public_key));
	fp_qv_key_set(p->qr_verdicts, qr_public_key);
	/* A reload the ingress has not taken yet is overtaken: only one can be taken. */
	struct auth_update *old = atomic_exchange(&p->auth_next, u);
	if (old != NULL) {
		fp_keys_free(old->keys);
		free(old);
	}
	return 0;
}

unsigned fp_ingest_burst(struct fp_pipeline *p, const struct fp_rx *rx, unsigned n)
{
	auth_take(p);
	uint64_t now_us = fp_now_us(), mono_us = fp_mono_us();
	staged_collect(p);
	uint64_t produced = atomic_load_explicit(&p->produced, PX_RELAXED);
	uint64_t queued = 0, bytes = 0;
	bool stopping = atomic_load_explicit(&p->stopping, PX_RELAXED);
	uint64_t writer_us = p->opt.shed_backlog_ms ? writer_backlog_us(p) : 0;
	if (p->opt.shed_backlog_ms && produced - p->released > p->mask / 2) /* acks leave slower than frames come */
		writer_us = writer_us > 2000u * p->opt.shed_backlog_ms ? writer_us : 2000u * p->opt.shed_backlog_ms;
	uint64_t verify_us = p->opt.shed_backlog_ms ? fp_vf_backlog_us(p->verifiers) : 0;
	bool shedding = p->opt.shed_backlog_ms &&
			(writer_us > 1000u * p->opt.shed_backlog_ms || verify_us > 1000u * p->opt.shed_backlog_ms);

	for (unsigned i = 0; i < n; i++) {
		bytes += rx[i].len;
		bool deny = rx[i].len >= 4 && rx[i].data[3] == FP_TYPE_DENY_REQUEST;
		if (stopping) {
			drop(p, FP_DROP_STOPPING);
		} else if (shedding && !deny && shed(p, &rx[i], writer_us, verify_us, now_us)) {
			continue;
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
	if (queued)
		produced_publish(p, produced);
	/* Bounded expiry work per burst: the sweep goes round the table over time. */
	uint32_t cutoff_s = (uint32_t)(now_us / 1000000u) - p->opt.dedup_window_s;
	uint64_t expired = fp_dedup_expire(p->dedup, cutoff_s, 64u * (n + 1));
	if (expired)
		ctr_add(p->ctr->dedup_expired, expired);
	ctr_set(p->ctr->dedup_entries, fp_dedup_count(p->dedup));
	return n;
}

/* Busy replies first (they answer frames not taken), then the acks of committed jobs. */
unsigned fp_ingest_acks_peek(struct fp_pipeline *p, const struct fp_ack_out **acks, unsigned max)
{
	staged_collect(p);
	unsigned n = 0;
	for (uint32_t i = p->busy_tail; i != p->busy_head && n < max; i++, n++)
		acks[n] = &p->busy[i & (BUSY_REPLIES_MAX - 1)];
	p->busy_peeked = n;
	uint64_t committed = atomic_load_explicit(&p->committed, memory_order_acquire);
	TG_ASSERT_HOT(p->released <= committed);
	for (uint64_t i = p->released; i < committed && n < max; i++, n++)
		acks[n] = &p->jobs[i & p->mask].ack;
	p->peeked = p->released + (n - p->busy_peeked);
	return n;
}

void fp_ingest_acks_release(struct fp_pipeline *p, unsigned n)
{
	uint64_t mono_us = fp_mono_us();
	unsigned busy = n < p->busy_peeked ? n : p->busy_peeked;
	TG_ASSERT(p->busy_head - p->busy_tail <= BUSY_REPLIES_MAX && busy <= p->busy_head - p->busy_tail);
	p->busy_tail += busy;
	p->busy_peeked -= busy;
	n -= busy;
	TG_ASSERT(p->released + n <= p->peeked);
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
	return p->released == atomic_load(&p->produced) && fp_vf_idle(p->verifiers) && p->busy_tail == p->busy_head;
}

bool fp_ingress_done(struct fp_pipeline *p, volatile sig_atomic_t *stop, bool *stopping)
{
	if (*stop && !*stopping) {
		*stopping = true;
		fp_pipeline_stop(p);
	}
	if (!*stopping || !fp_pipeline_writer_done(p))
		return false;
	/* A writer that gave up commits nothing more: done once the acks of what
	 * it did commit have left; the rest is never acked, and is sent again. */
	if (atomic_load(&p->writer_status) != 0)
		return p->released == atomic_load(&p->committed);
	return fp_pipeline_idle(p);
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
		TG_ASSERT_HOT(job->rec_off[i] + (size_t)rec[0] <= job->frame_len); /* as fp_frame_parse found it */
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
			/* The store asserts that p->seq_next is above the log's last seq. */
			rc = st_log_append(p->txn, p->seq_next, &meta, rec);
			if (rc != 0)
				return rc;
			p->seq_next++;
			p->txn_taps++;
			p->txn_qr_unverified += p->opt.qr_verify_after_commit && job->medium[i] == FP_MEDIUM_QR;
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
	uint64_t taps = 0, committed = atomic_load_explicit(&p->committed, PX_RELAXED);
	/* Commits only move forward, and only over jobs the writer has written (once per commit: always on). */
	TG_ASSERT(committed <= upto && upto <= p->written);
	TG_ASSERT(upto <= atomic_load_explicit(&p->produced, memory_order_acquire));
	for (uint64_t i = committed; i < upto; i++) {
		validator_account(p, &p->jobs[i & p->mask]);
		taps += p->jobs[i & p->mask].hdr.tap_count;
	}
	atomic_store_explicit(&p->taps_committed, atomic_load_explicit(&p->taps_committed, PX_RELAXED) + taps,
			      PX_RELAXED);
	atomic_store_explicit(&p->committed, upto, memory_order_release);
	uint64_t one = 1;
	(void)!write(p->ack_efd, &one, sizeof(one));
}

/*
 * Update the writer's cost model after a commit that took commit_us. Each
 * decays by an eighth a commit; the per-tap sums weigh a txn by its taps, so
 * a large batch, where the cost per tap is seen best, counts most.
 */
static void writer_rate_update(struct fp_pipeline *p, uint64_t commit_us)
{
	uint64_t avg = atomic_load_explicit(&p->writer_commit_us, PX_RELAXED);
	atomic_store_explicit(&p->writer_commit_us, avg - avg / 8 + commit_us / 8, PX_RELAXED);
	if (p->txn_job_taps > 0) {
		p->rate_ns_sum = p->rate_ns_sum - p->rate_ns_sum / 8 + p->txn_busy_us * 1000u;
		p->rate_taps_sum = p->rate_taps_sum - p->rate_taps_sum / 8 + p->txn_job_taps;
		atomic_store_explicit(&p->writer_ns_per_tap, p->rate_ns_sum / p->rate_taps_sum, PX_RELAXED);
	}
	p->txn_busy_us = 0;
	p->txn_job_taps = 0;
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
	/* before_ack, nothing left to verify: this commit's taps have their verdicts (verify.c) */
	bool frontier = fp_qv_writer_frontier(p->qr_verdicts);
	if (rc == 0 && frontier)
		rc = st_qr_frontier_put(p->txn, p->seq_next - 1);
	if (rc == 0)
		rc = st_wtxn_commit(p->txn);
	else
		st_wtxn_abort(p->txn);
	p->txn = NULL;
	if (rc != 0)
		return rc;
	uint64_t latency_us = fp_mono_us() - start_us;
	writer_rate_update(p, latency_us);
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
	/* pending first: the background verifier reads log_next_seq (acquire), then verifies up to it */
	ctr_add(p->ctr->qr_pending_added, p->txn_qr_unverified);
	atomic_store_explicit(&p->ctr->log_next_seq, p->seq_next, memory_order_release);
	if (frontier)
		ctr_set(p->ctr->qr_frontier, p->seq_next - 1);
	p->seq_committed_next = p->seq_next;
	p->txn_taps = 0;
	p->txn_qr_unverified = 0;
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
	p->txn_qr_unverified = 0;
	p->txn_busy_us = p->txn_job_taps = 0;
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
	ctr_add(p->ctr->commit_failing, 1); /* until a commit succeeds: /healthz, tapgate_commit_failing */
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
	uint64_t start_us = p->written < produced ? fp_mono_us() : 0;
	while (p->written < produced && p->txn_taps < p->opt.commit_batch_taps) {
		const struct fp_job *job = &p->jobs[p->written & p->mask];
		TG_ASSERT_HOT(p->written >= atomic_load_explicit(&p->committed, PX_RELAXED));
		int rc = job_write(p, job);
		if (rc != 0)
			return rc;
		p->written++;
		p->txn_job_taps += job->hdr.tap_count;
		/* Nothing of this txn is pending: the job's originals are durable. */
		if (p->txn == NULL)
			publish_committed(p, p->written);
	}
	if (start_us)
		p->txn_busy_us += fp_mono_us() - start_us;
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
		    (full || stopping || (ring_empty && waited_us >= p->opt.commit_interval_us))) {
			rc = batch_commit(p);
			if (rc == 0 && atomic_load_explicit(&p->ctr->commit_failing, PX_RELAXED) != 0)
				ctr_set(p->ctr->commit_failing, 0);
		}
		if (rc != 0) {
			batch_failed(p, rc, &failures);
			if (stopping && stop_failing_since_us == 0)
				stop_failing_since_us = fp_mono_us();
			if (stopping && fp_mono_us() - stop_failing_since_us > p->opt.stop_retry_us) {
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
	p->busy = calloc(BUSY_REPLIES_MAX, sizeof(*p->busy));
	p->writer_efd = eventfd(0, EFD_CLOEXEC);
	p->ack_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!p->jobs || !p->validators || !p->validators_dirty || !p->deny || !p->dedup || !p->busy ||
	    p->writer_efd < 0 || p->ack_efd < 0)
		return FP_PIPE_ERR_NOMEM;
	p->verifiers = fp_vf_create(p->opt.verify_threads, p->ack_efd, p->ctr);
	return p->verifiers != NULL ? 0 : FP_PIPE_ERR_THREAD;
}

const char *fp_pipeline_strerror(int err)
{
	switch (err) {
	case 0: return "ok";
	case FP_PIPE_ERR_NOMEM: return "out of memory";
	case FP_PIPE_ERR_STORE: return "the store cannot be read or written";
	case FP_PIPE_ERR_THREAD: return "the writer thread cannot start";
	case FP_PIPE_ERR_OPTIONS: return "invalid pipeline options";
	default: return "unknown pipeline error";
	}
}

int fp_pipeline_create(struct fp_pipeline **out, const struct fp_pipeline_options *opt,
		       struct fp_keys *keys, struct st_env *env, struct fp_counters *ctr)
{
	if (opt->ring_frames == 0 || (opt->ring_frames & (opt->ring_frames - 1)) != 0 ||
	    opt->commit_batch_taps == 0 || opt->dedup_taps_max == 0 || opt->verify_threads == 0 ||
	    opt->verify_threads > VF_LANES_MAX) {
		fp_keys_free(keys);
		return FP_PIPE_ERR_OPTIONS;
	}
	struct fp_pipeline *p = sodium_init() < 0 ? NULL : calloc(1, sizeof(*p));
	if (p == NULL) {
		fp_keys_free(keys);
		return FP_PIPE_ERR_NOMEM;
	}
	p->opt = *opt;
	if (p->opt.stop_retry_us == 0)
		p->opt.stop_retry_us = FP_STOP_RETRY_US_DEFAULT;
	p->mask = opt->ring_frames - 1;
	p->keys = keys;
	p->env = env;
	p->ctr = ctr;
	p->writer_efd = p->ack_efd = -1;
	p->writer_ns_per_tap = WRITER_NS_PER_TAP_START;
	p->writer_commit_us = WRITER_COMMIT_US_START;
	p->rate_taps_sum = WRITER_RATE_TAPS_START;
	p->rate_ns_sum = (uint64_t)WRITER_NS_PER_TAP_START * WRITER_RATE_TAPS_START;
	int rc = pipeline_alloc(p);
	if (rc == 0 && st_log_next_seq(env, &p->seq_next) != 0)
		rc = FP_PIPE_ERR_STORE;
	if (rc == 0 && st_validator_scan(env, validator_load, p) != 0)
		rc = FP_PIPE_ERR_STORE;
	if (rc == 0)
		rc = dedup_rebuild(p);
	p->seq_committed_next = p->seq_next;
	ctr_set(ctr->log_next_seq, p->seq_next);
	if (rc == 0)
		rc = fp_qv_create(&p->qr_verdicts, env, ctr, opt->qr_verify_after_commit, p->seq_next,
				  opt->verify_threads, opt->qr_public_key);
	ctr_set(ctr->map_size_bytes, st_env_map_size(env));
	ctr_set(ctr->dedup_capacity, opt->dedup_taps_max);
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
	fp_qv_destroy(p->qr_verdicts); /* after the writer: its last verdicts cover every commit */
	fp_vf_destroy(p->verifiers);
	struct auth_update *u = atomic_exchange(&p->auth_next, NULL);
	if (u != NULL) {
		fp_keys_free(u->keys);
		free(u);
	}
	fp_keys_free(p->keys);
	if (p->writer_efd >= 0)
		close(p->writer_efd);
	if (p->ack_efd >= 0)
		close(p->ack_efd);
	fp_dedup_free(p->dedup);
	free(p->validators_dirty);
	free(p->validators);
	free(p->deny);
	free(p->busy);
	free(p->jobs);
	free(p);
}
