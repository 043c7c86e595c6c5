/*
 * internal.h - what the fast path's own files share and nothing else sees:
 * the job (one frame in flight, in the verifier stage or the writer's ring)
 * and the verifier stage (fastpath/verify.c) that pipeline.c feeds.
 */
#ifndef TAPGATE_FASTPATH_INTERNAL_H
#define TAPGATE_FASTPATH_INTERNAL_H

#include "fastpath/fastpath.h"

enum job_action { ACTION_NONE = 0, ACTION_APPEND = 1, ACTION_QUARANTINE = 2 };

/*
 * What the screening of a tap decided, before the dedup set takes it. The
 * screening runs every check that costs nanoseconds; a QR signature (about
 * 110 us) is verified only for a tap the dedup set has not decided: a copy of
 * a decided tap (same identity, same content, same validator) has the very
 * bytes whose signature was verified when its original was stored.
 */
enum tap_screen {
	SCREEN_REJECT = 0,    /* job->reason[i] says why */
	SCREEN_DUPLICATE = 1, /* a copy of a decided tap: answered from the dedup set */
	SCREEN_INSERT = 2,    /* valid: the dedup set decides */
	SCREEN_VERIFY = 3,    /* valid if its QR signature verifies (then reason[i] applies, if set) */
};

/* One frame in flight. Everything the verifier, the writer and the ack need, no pointers out. */
struct fp_job {
	uint64_t recv_time_us;
	uint64_t recv_mono_us;
	struct fp_frame_header hdr;
	uint16_t frame_len;
	uint16_t signatures; /* taps to verify (SCREEN_VERIFY) */
	uint16_t rec_off[FP_TAPS_PER_FRAME_MAX];
	uint8_t action[FP_TAPS_PER_FRAME_MAX];
	struct fp_key key[FP_TAPS_PER_FRAME_MAX];
	uint64_t content[FP_TAPS_PER_FRAME_MAX];
	/* screening (ingress): enum tap_screen, reason, and what the dedup set needs */
	uint8_t screen[FP_TAPS_PER_FRAME_MAX];
	uint8_t reason[FP_TAPS_PER_FRAME_MAX];
	uint8_t medium[FP_TAPS_PER_FRAME_MAX];
	bool signature_ok[FP_TAPS_PER_FRAME_MAX]; /* written by a verifier */
	uint32_t tap_time_s[FP_TAPS_PER_FRAME_MAX];
	uint8_t stored, duplicate, conflict, rejected;
	uint8_t mac_key[FP_KEY_BYTES]; /* the frame's key, for its ack (keys may be reloaded meanwhile) */
	uint8_t qr_public_key[32];     /* staged jobs: the QR platform key in force when the frame came */
	struct fp_ack_out ack;
	uint8_t frame[FP_FRAME_BYTES_MAX];
};

/* Verify the QR signature of tap i straight from the wire bytes. True if it verifies. */
bool fp_job_signature_ok(const struct fp_job *job, unsigned i, const uint8_t public_key[32]);
/* The same for a QR tap record as it arrived and as the log keeps it (a QR record is FP_QR_BYTES). */
bool fp_qr_record_signature_ok(const uint8_t *record, const uint8_t public_key[32]);

/*
 * The background QR verifier (fastpath/verdict.c), for gateway.qr_verify =
 * after_commit: it walks the log's committed taps beyond the verified
 * frontier in order, verifies each QR signature on low-priority threads, and
 * commits the verdicts (frontier, forged taps) in batches. In before_ack mode
 * it verifies only what an earlier after_commit run left pending; then the
 * writer moves the frontier with each commit (fp_qv_writer_frontier). It reads the writer's progress from
 * ctr->log_next_seq; nothing it does holds the ingress or the writer up
 * except its own commits (a few a second) on LMDB's writer lock.
 */
struct fp_qv;
/* Start it. seq_next: the log's next seq now (before any tap of this run).
 * Returns 0, FP_PIPE_ERR_NOMEM, FP_PIPE_ERR_STORE, FP_PIPE_ERR_THREAD. */
int fp_qv_create(struct fp_qv **out, struct st_env *env, struct fp_counters *ctr, bool after_commit,
		 uint64_t seq_next, unsigned threads, const uint8_t qr_public_key[32]);
/* True once the writer records the frontier in its commits (before_ack, nothing left to verify). */
bool fp_qv_writer_frontier(const struct fp_qv *qv);
/* A reload: codes are checked against this key, and the one it replaces (a rotation). */
void fp_qv_key_set(struct fp_qv *qv, const uint8_t qr_public_key[32]);
/* Stop it after the writer has stopped: commit the verdicts it has, then free it. */
void fp_qv_destroy(struct fp_qv *qv);

/*
 * The verifier stage: lanes of verifier threads, each with a bounded FIFO of
 * jobs. The ingress fills a lane's next slot and submits it; the lane's
 * thread verifies every SCREEN_VERIFY tap of it; the ingress collects
 * verified jobs (any lane, each lane in order) and queues them to the writer.
 * Ingress-side calls are for one thread only; nothing allocates after create.
 */
#define VF_LANES_MAX 64u
#define VF_LANE_JOBS 256u /* per lane, a power of two */
struct fp_vf_stage;

/* Start `lanes` verifier threads (1 .. VF_LANES_MAX). wake_fd is written when a job is verified.
 * Returns NULL when memory or a thread cannot be had. */
struct fp_vf_stage *fp_vf_create(unsigned lanes, int wake_fd, struct fp_counters *ctr);
void fp_vf_destroy(struct fp_vf_stage *s);
/* The slot the next submitted job goes to (the lane with least work queued), or NULL if all are full. */
struct fp_job *fp_vf_slot(struct fp_vf_stage *s);
/* Hand the job in the slot fp_vf_slot() returned to its lane. */
void fp_vf_submit(struct fp_vf_stage *s);
/* The oldest verified job not yet collected, or NULL. */
struct fp_job *fp_vf_ready(struct fp_vf_stage *s);
/* Done with the job fp_vf_ready() returned: its slot is free again. */
void fp_vf_collect(struct fp_vf_stage *s);
/* Is a job of this validator and frame_seq waiting or being verified? */
bool fp_vf_holds(const struct fp_vf_stage *s, uint32_t validator_id, uint64_t frame_seq);
/* Every submitted job collected? */
bool fp_vf_idle(const struct fp_vf_stage *s);
/* How long the stage needs for what is queued now, in microseconds (the busiest lane). */
uint64_t fp_vf_backlog_us(const struct fp_vf_stage *s);

#endif
