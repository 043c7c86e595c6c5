/*
 * verdict.c - the background QR verifier: signatures verified after the commit.
 *
 * With gateway.qr_verify = after_commit a QR tap passes every other check at
 * ingest and is committed and acknowledged with its signature not verified
 * yet (docs/DESIGN-NOTES.md argues why). This stage gives every such tap its
 * verdict before anything rates it: a coordinator thread walks the log's
 * committed taps beyond the verified frontier in seq order, a round of up to
 * QV_BATCH QR taps at a time; helper threads, one per core, at the lowest
 * priority there is (SCHED_IDLE, else nice 19), verify the round's signatures,
 * so the drain of a storm always gets the CPU first; the coordinator then
 * records the verdicts durably (st_qr_verdicts_commit: the frontier, and each
 * forged tap quarantined with reason qr_signature).
 *
 * The coordinator runs at normal priority and does no Ed25519 work: it holds
 * LMDB's writer lock when it commits, and a SCHED_IDLE thread holding it on a
 * busy machine would stall the writer (priority inversion). Its commits are
 * batched - QV_COMMIT_VERDICTS verdicts or QV_COMMIT_US, whichever comes
 * first - so they take a few of the writer's fsync slots a second, no more.
 *
 * Crash safety: nothing is believed but the durable frontier. After kill -9
 * the next start reads it and walks again from there; a verdict found but not
 * committed is found again, and a forged tap is put at its seq (a put, not an
 * insert), so each tap gets its verdict exactly once in the store.
 *
 * In before_ack mode the taps of this run were verified before their ack: the
 * stage verifies only what an after_commit run left beyond the frontier; from
 * then on the writer moves the frontier in its own commits.
 */
#include "fastpath/internal.h"
#include "base/assert.h"
#include "store/store.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define QV_BATCH 1024u             /* QR taps verified per round */
#define QV_SCAN_RECORDS 65536u     /* log records read per round at most */
#define QV_COMMIT_VERDICTS 4096u   /* commit once this many verdicts wait ... */
#define QV_COMMIT_US 100000u       /* ... or the frontier has waited this long to be recorded */
#define QV_FORGED_MAX (4u * QV_BATCH) /* forged taps per commit: a round never overflows it */
#define QV_IDLE_US 10000u          /* nothing new in the log: look again after this long */
#define QV_HELPERS_MAX 64u
#define QV_LOG_FORGED_MAX 8u       /* forged taps named in the log per commit; the rest counted */
#define QV_CLAIMS_CLOSED (1u << 30) /* `next` between rounds: every claim fails */

static_assert(QV_BATCH < QV_CLAIMS_CLOSED, "claims of a round stay below the closed mark");
static_assert(QV_FORGED_MAX >= QV_BATCH, "one round's forged taps fit");

struct qv_tap {
	uint64_t seq;
	struct st_tap_meta meta;
	uint8_t record[ST_RECORD_BYTES_MAX];
	bool forged; /* written by the helper that verified it */
};

struct fp_qv {
	struct st_env *env;
	struct fp_counters *ctr;
	bool after_commit;
	uint64_t verified_from; /* before_ack: taps from this seq on were verified before their ack */
	_Atomic bool stopping;
	_Atomic bool writer_frontier; /* before_ack, nothing left to verify: the writer moves the frontier */
	/* keys: a reload writes them, the coordinator copies them into the round */
	pthread_mutex_t key_lock;
	uint8_t key[2][32]; /* in force, and the one it replaced */
	bool have_previous;
	/* the round: helpers claim taps by `next`; the last one done signals `finished` */
	pthread_mutex_t lock;
	pthread_cond_t work, finished;
	uint64_t round; /* bumped for each round: helpers wait for a new one */
	_Atomic unsigned next, done, batch_n;
	uint8_t round_key[2][32];
	bool round_previous;
	struct qv_tap *batch;
	/* coordinator: verdicts found, not yet recorded */
	uint64_t frontier_durable, frontier;
	uint64_t verdicts_waiting, waiting_since_us;
	struct st_qr_forged *forged;
	size_t forged_n;
	unsigned helpers, helpers_started;
	bool coordinator_started;
	pthread_t coordinator, helper[QV_HELPERS_MAX];
};

static uint64_t qv_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The lowest priority the kernel has: run only on a core nothing else wants. */
static void idle_priority(void)
{
	struct sched_param sp = {0};
	if (sched_setscheduler(0, SCHED_IDLE, &sp) != 0) /* 0: this thread */
		setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
}

/* Verify the round's taps this thread can claim. */
static void round_work(struct fp_qv *qv)
{
	unsigned i;
	while ((i = atomic_fetch_add(&qv->next, 1)) < atomic_load(&qv->batch_n)) {
		struct qv_tap *t = &qv->batch[i];
		t->forged = !fp_qr_record_signature_ok(t->record, qv->round_key[0]) &&
			    !(qv->round_previous && fp_qr_record_signature_ok(t->record, qv->round_key[1]));
		atomic_fetch_add_explicit(&qv->ctr->qr_signatures_verified, 1, memory_order_relaxed);
		if (atomic_fetch_add(&qv->done, 1) + 1 == atomic_load(&qv->batch_n)) {
			pthread_mutex_lock(&qv->lock);
			pthread_cond_signal(&qv->finished);
			pthread_mutex_unlock(&qv->lock);
		}
	}
}

static void *helper_main(void *arg)
{
	struct fp_qv *qv = arg;
	uint64_t seen = 0;
	idle_priority();
	for (;;) {
		pthread_mutex_lock(&qv->lock);
		while (qv->round == seen && !atomic_load(&qv->stopping))
			pthread_cond_wait(&qv->work, &qv->lock);
		seen = qv->round;
		pthread_mutex_unlock(&qv->lock);
		if (atomic_load(&qv->stopping))
			return NULL;
		round_work(qv);
	}
}

/* Hand the batch to the helpers and wait for every verdict. False if stopping came first (round abandoned). */
static bool round_run(struct fp_qv *qv, unsigned n)
{
	pthread_mutex_lock(&qv->key_lock);
	memcpy(qv->round_key, qv->key, sizeof(qv->round_key));
	qv->round_previous = qv->have_previous;
	pthread_mutex_unlock(&qv->key_lock);
	pthread_mutex_lock(&qv->lock);
	atomic_store(&qv->batch_n, n);
	atomic_store(&qv->done, 0);
	atomic_store(&qv->next, 0); /* opens the claims: batch and keys are in place */
	qv->round++;
	pthread_cond_broadcast(&qv->work);
	while (atomic_load(&qv->done) < n && !atomic_load(&qv->stopping)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100000000L;
		if (ts.tv_nsec >= 1000000000L)
			ts.tv_sec++, ts.tv_nsec -= 1000000000L;
		pthread_cond_timedwait(&qv->finished, &qv->lock, &ts);
	}
	atomic_store(&qv->next, QV_CLAIMS_CLOSED);
	bool whole = atomic_load(&qv->done) >= n;
	pthread_mutex_unlock(&qv->lock);
	return whole;
}

struct collect {
	struct fp_qv *qv;
	uint64_t end;     /* the last committed seq when the round began */
	uint64_t through; /* the last seq read */
	unsigned n, records;
};

static int collect_visit(void *arg, uint64_t seq, const struct st_tap_meta *meta, const uint8_t *record)
{
	struct collect *c = arg;
	if (seq > c->end || (!c->qv->after_commit && seq >= c->qv->verified_from))
		return 1;
	c->through = seq;
	c->records++;
	if (meta->record_len == FP_QR_BYTES && record[1] == FP_MEDIUM_QR) {
		struct qv_tap *t = &c->qv->batch[c->n++];
		t->seq = seq;
		t->meta = *meta;
		memcpy(t->record, record, meta->record_len);
	}
	return c->n == QV_BATCH || c->records == QV_SCAN_RECORDS;
}

/* One round: read on from the frontier, verify what was read. Returns true if the frontier moved. */
static bool qv_round(struct fp_qv *qv)
{
	/* the writer publishes log_next_seq after its commit (release): the log holds everything below */
	uint64_t end = atomic_load_explicit(&qv->ctr->log_next_seq, memory_order_acquire) - 1;
	if (qv->frontier >= end || qv->forged_n + QV_BATCH > QV_FORGED_MAX)
		return false; /* nothing new, or the forged taps found wait for their commit first */
	if (!qv->after_commit && qv->frontier + 1 >= qv->verified_from)
		return false; /* this run's taps were verified before their ack: the writer moves the frontier */
	uint64_t before = qv->frontier;
	struct collect c = {.qv = qv, .end = end, .through = before};
	int rc = st_log_scan(qv->env, qv->frontier + 1, false, collect_visit, &c);
	if (rc != 0) {
		fprintf(stderr, "tapgate: QR verifier: reading the log after seq %" PRIu64 " failed: %s; trying again\n",
			qv->frontier, st_strerror(rc));
		return false;
	}
	if (c.n > 0 && !round_run(qv, c.n))
		return false;
	for (unsigned i = 0; i < c.n; i++) {
		const struct qv_tap *t = &qv->batch[i];
		if (!t->forged)
			continue;
		struct st_qr_forged *f = &qv->forged[qv->forged_n++];
		f->seq = t->seq;
		f->meta = t->meta;
		memcpy(f->record, t->record, t->meta.record_len);
	}
	qv->verdicts_waiting += c.n;
	qv->frontier = c.through;
	return c.through > before;
}

/* Name the forged taps of a commit in the log, with their validators. */
static void forged_say(const struct fp_qv *qv)
{
	for (size_t i = 0; i < qv->forged_n && i < QV_LOG_FORGED_MAX; i++) {
		const struct st_qr_forged *f = &qv->forged[i];
		fprintf(stderr,
			"tapgate: forged QR code: seq %" PRIu64 " from validator %u (route %u, vehicle %u) was "
			"acknowledged stored; quarantined with reason qr_signature, never rated\n",
			f->seq, f->meta.validator_id, f->meta.route_id, f->meta.vehicle_id);
	}
	if (qv->forged_n > QV_LOG_FORGED_MAX)
		fprintf(stderr, "tapgate: and %zu more forged QR codes through seq %" PRIu64
				" (tapdump quarantine lists them all)\n", qv->forged_n - QV_LOG_FORGED_MAX, qv->frontier);
}

/*
 * In before_ack mode, once the durable frontier has reached the first tap of
 * this run, every later tap was verified before its ack: from then on the
 * writer records the frontier in each of its commits (st_qr_frontier_put), so
 * rating never waits on this thread, and this thread writes no more.
 */
static void writer_frontier_check(struct fp_qv *qv)
{
	if (!qv->after_commit && qv->frontier_durable + 1 >= qv->verified_from)
		atomic_store(&qv->writer_frontier, true);
}

bool fp_qv_writer_frontier(const struct fp_qv *qv)
{
	return qv != NULL && atomic_load_explicit(&qv->writer_frontier, memory_order_acquire);
}

/* Record the verdicts found so far. A failure keeps them for the next attempt. */
static void qv_commit(struct fp_qv *qv)
{
	int rc = st_qr_verdicts_commit(qv->env, qv->frontier, qv->forged, qv->forged_n);
	if (rc != 0) {
		fprintf(stderr, "tapgate: QR verifier: recording verdicts through seq %" PRIu64
				" failed (%s); trying again\n", qv->frontier, st_strerror(rc));
		struct timespec ts = {0, 100000000L};
		nanosleep(&ts, NULL);
		return;
	}
	forged_say(qv);
	atomic_fetch_add(&qv->ctr->qr_forged, qv->forged_n);
	atomic_fetch_add(&qv->ctr->qr_verdicts, qv->verdicts_waiting);
	atomic_store(&qv->ctr->qr_frontier, qv->frontier);
	qv->frontier_durable = qv->frontier;
	qv->verdicts_waiting = 0;
	qv->forged_n = 0;
	writer_frontier_check(qv);
}

static bool commit_due(const struct fp_qv *qv, uint64_t now_us)
{
	if (qv->frontier == qv->frontier_durable)
		return false;
	return qv->verdicts_waiting >= QV_COMMIT_VERDICTS || now_us - qv->waiting_since_us >= QV_COMMIT_US ||
	       qv->forged_n + QV_BATCH > QV_FORGED_MAX;
}

static void *coordinator_main(void *arg)
{
	struct fp_qv *qv = arg;
	while (!atomic_load(&qv->stopping)) {
		bool moved = qv_round(qv);
		uint64_t now_us = qv_mono_us();
		if (moved && qv->waiting_since_us == 0)
			qv->waiting_since_us = now_us;
		if (commit_due(qv, now_us)) {
			qv_commit(qv);
			qv->waiting_since_us = qv->frontier == qv->frontier_durable ? 0 : now_us;
		}
		if (!moved) {
			struct timespec ts = {0, QV_IDLE_US * 1000L};
			nanosleep(&ts, NULL);
		}
	}
	if (qv->frontier != qv->frontier_durable)
		qv_commit(qv);
	uint64_t pending = atomic_load(&qv->ctr->qr_pending_added) - atomic_load(&qv->ctr->qr_verdicts);
	if (pending > 0)
		fprintf(stderr, "tapgate: QR verifier stopped with %" PRIu64 " signatures pending after seq %" PRIu64
				": the next start verifies them\n", pending, qv->frontier_durable);
	return NULL;
}

struct pending_count {
	uint64_t end, qr;
};

static int pending_visit(void *arg, uint64_t seq, const struct st_tap_meta *meta, const uint8_t *record)
{
	struct pending_count *c = arg;
	if (seq > c->end)
		return 1;
	c->qr += meta->record_len == FP_QR_BYTES && record[1] == FP_MEDIUM_QR;
	return 0;
}

/* The frontier, and the QR taps beyond it that an earlier run left without a verdict. */
static int qv_resume(struct fp_qv *qv, uint64_t seq_next)
{
	int rc = st_qr_frontier(qv->env, &qv->frontier);
	struct pending_count c = {.end = seq_next - 1};
	if (rc == 0 && qv->frontier < c.end)
		rc = st_log_scan(qv->env, qv->frontier + 1, false, pending_visit, &c);
	if (rc != 0) {
		fprintf(stderr, "tapgate: QR verifier: reading the verified frontier failed: %s\n", st_strerror(rc));
		return FP_PIPE_ERR_STORE;
	}
	/* Recorded now, before any tap of this run: an absent key would mean "all verified". */
	if ((rc = st_qr_verdicts_commit(qv->env, qv->frontier, NULL, 0)) != 0) {
		fprintf(stderr, "tapgate: QR verifier: recording the verified frontier failed: %s\n", st_strerror(rc));
		return FP_PIPE_ERR_STORE;
	}
	qv->frontier_durable = qv->frontier;
	writer_frontier_check(qv);
	atomic_store(&qv->ctr->qr_frontier, qv->frontier);
	atomic_fetch_add(&qv->ctr->qr_pending_added, c.qr);
	if (c.qr > 0)
		fprintf(stderr, "tapgate: QR verifier: %" PRIu64 " signatures pending after seq %" PRIu64
				" from an earlier run: verifying them in the background\n", c.qr, qv->frontier);
	return 0;
}

int fp_qv_create(struct fp_qv **out, struct st_env *env, struct fp_counters *ctr, bool after_commit,
		 uint64_t seq_next, unsigned threads, const uint8_t qr_public_key[32])
{
	TG_ASSERT(seq_next >= 1 && threads >= 1);
	struct fp_qv *qv = calloc(1, sizeof(*qv));
	if (qv == NULL)
		return FP_PIPE_ERR_NOMEM;
	qv->env = env;
	qv->ctr = ctr;
	qv->after_commit = after_commit;
	qv->verified_from = seq_next;
	qv->helpers = threads < QV_HELPERS_MAX ? threads : QV_HELPERS_MAX;
	memcpy(qv->key[0], qr_public_key, 32);
	atomic_store(&qv->next, QV_CLAIMS_CLOSED);
	pthread_mutex_init(&qv->key_lock, NULL);
	pthread_mutex_init(&qv->lock, NULL);
	pthread_cond_init(&qv->work, NULL);
	pthread_cond_init(&qv->finished, NULL);
	qv->batch = calloc(QV_BATCH, sizeof(*qv->batch));
	qv->forged = calloc(QV_FORGED_MAX, sizeof(*qv->forged));
	*out = qv;
	if (qv->batch == NULL || qv->forged == NULL)
		return FP_PIPE_ERR_NOMEM;
	int rc = qv_resume(qv, seq_next);
	if (rc != 0)
		return rc;
	for (; qv->helpers_started < qv->helpers; qv->helpers_started++) {
		if (pthread_create(&qv->helper[qv->helpers_started], NULL, helper_main, qv) != 0)
			return FP_PIPE_ERR_THREAD;
		pthread_setname_np(qv->helper[qv->helpers_started], "tapgate-qrcheck");
	}
	if (pthread_create(&qv->coordinator, NULL, coordinator_main, qv) != 0)
		return FP_PIPE_ERR_THREAD;
	qv->coordinator_started = true;
	pthread_setname_np(qv->coordinator, "tapgate-verdict");
	return 0;
}

void fp_qv_key_set(struct fp_qv *qv, const uint8_t qr_public_key[32])
{
	pthread_mutex_lock(&qv->key_lock);
	if (memcmp(qv->key[0], qr_public_key, 32) != 0) {
		memcpy(qv->key[1], qv->key[0], 32);
		memcpy(qv->key[0], qr_public_key, 32);
		qv->have_previous = true;
	}
	pthread_mutex_unlock(&qv->key_lock);
}

void fp_qv_destroy(struct fp_qv *qv)
{
	if (qv == NULL)
		return;
	pthread_mutex_lock(&qv->lock);
	atomic_store(&qv->stopping, true);
	pthread_cond_broadcast(&qv->work);
	pthread_cond_broadcast(&qv->finished);
	pthread_mutex_unlock(&qv->lock);
	if (qv->coordinator_started)
		pthread_join(qv->coordinator, NULL);
	for (unsigned i = 0; i < qv->helpers_started; i++)
		pthread_join(qv->helper[i], NULL);
	pthread_cond_destroy(&qv->finished);
	pthread_cond_destroy(&qv->work);
	pthread_mutex_destroy(&qv->lock);
	pthread_mutex_destroy(&qv->key_lock);
	free(qv->forged);
	free(qv->batch);
	free(qv);
}
