/*
 * verify.c - the verifier stage: QR signatures verified on every core.
 *
 * An Ed25519 verification costs about 110 us here, a hundred times a frame's
 * MAC; done on the ingress thread it made one core the bound of every frame
 * with a QR code. Here each lane is a thread with a single-producer,
 * single-consumer FIFO of VF_LANE_JOBS jobs and three counters, each written
 * by one side: submitted (ingress), verified (the lane), collected (ingress).
 * The ingress gives a frame with signatures to verify to the lane with the
 * least work queued and collects verified frames between bursts; a lane
 * sleeps on an eventfd when it has nothing to do. Each lane measures its own
 * wall time per signature, so fp_vf_backlog_us() says how long the queued work
 * takes on this machine as it is loaded now: the gateway sheds load on it.
 */
#include "fastpath/internal.h"
#include "base/assert.h"

#include <assert.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#define VF_NS_PER_SIGNATURE_START 120000u /* until a lane has measured its own */
/* The verifier threads' nice value. 10 (a tenth of the ingress's CPU share
 * when both want it) drained a 300k-tap, 10,000-validator mixed storm in 19 s
 * here against 10.5 s at 0, with the load generator on the same two cores;
 * both kept duplicates under 0.02 per tap. Shedding, not priority, is what
 * keeps the ingress answering: 0. */
#define VF_NICE 0

static_assert((VF_LANE_JOBS & (VF_LANE_JOBS - 1)) == 0, "lane size is a power of two");

struct fp_vf_lane {
	_Alignas(64) _Atomic uint64_t submitted;
	_Alignas(64) _Atomic uint64_t verified;
	_Atomic uint64_t ns_per_signature; /* moving average, written by the lane */
	_Atomic bool sleeping;
	/* ingress side */
	_Alignas(64) uint64_t collected;
	uint64_t signatures_queued; /* submitted, not yet collected */
	/* fixed */
	struct fp_vf_stage *stage;
	struct fp_job *jobs;
	int efd;
	bool started;
	pthread_t thread;
};

struct fp_vf_stage {
	_Atomic bool stopping;
	unsigned lanes;
	unsigned pick;       /* the lane fp_vf_slot() chose */
	unsigned next_ready; /* where fp_vf_ready() looks first: lanes take turns */
	int wake_fd;
	struct fp_counters *ctr;
	struct fp_vf_lane lane[VF_LANES_MAX];
};

bool fp_qr_record_signature_ok(const uint8_t *record, const uint8_t public_key[32])
{
	const uint8_t *signed_bytes = record + FP_TAP_COMMON_BYTES;
	return crypto_sign_verify_detached(signed_bytes + FP_QR_PAYLOAD_BYTES, signed_bytes, FP_QR_PAYLOAD_BYTES,
					   public_key) == 0;
}

bool fp_job_signature_ok(const struct fp_job *job, unsigned i, const uint8_t public_key[32])
{
	return fp_qr_record_signature_ok(job->frame + job->rec_off[i], public_key);
}

static void lane_verify(struct fp_vf_lane *l, struct fp_job *job)
{
	uint64_t start_us = fp_mono_us();
	for (unsigned i = 0; i < job->hdr.tap_count; i++)
		if (job->screen[i] == SCREEN_VERIFY)
			job->signature_ok[i] = fp_job_signature_ok(job, i, job->qr_public_key);
	atomic_fetch_add_explicit(&l->stage->ctr->qr_signatures_verified, job->signatures, memory_order_relaxed);
	uint64_t ns = (fp_mono_us() - start_us) * 1000u / (job->signatures ? job->signatures : 1);
	uint64_t avg = atomic_load_explicit(&l->ns_per_signature, memory_order_relaxed);
	atomic_store_explicit(&l->ns_per_signature, avg - avg / 8 + ns / 8, memory_order_relaxed);
}

static void lane_wait(struct fp_vf_lane *l, uint64_t done)
{
	atomic_store_explicit(&l->sleeping, true, memory_order_seq_cst);
	if (atomic_load_explicit(&l->submitted, memory_order_seq_cst) == done && !atomic_load(&l->stage->stopping)) {
		struct pollfd pfd = {.fd = l->efd, .events = POLLIN};
		if (poll(&pfd, 1, 100) > 0) {
			uint64_t v;
			(void)!read(l->efd, &v, sizeof(v));
		}
	}
	atomic_store_explicit(&l->sleeping, false, memory_order_seq_cst);
}

static void *lane_main(void *arg)
{
	struct fp_vf_lane *l = arg;
	uint64_t done = 0;
	setpriority(PRIO_PROCESS, (id_t)gettid(), VF_NICE);
	while (!atomic_load(&l->stage->stopping)) {
		uint64_t submitted = atomic_load_explicit(&l->submitted, memory_order_acquire);
		if (done == submitted) {
			lane_wait(l, done);
			continue;
		}
		TG_ASSERT_HOT(done < submitted && submitted - done <= VF_LANE_JOBS);
		lane_verify(l, &l->jobs[done & (VF_LANE_JOBS - 1)]);
		done++;
		atomic_store_explicit(&l->verified, done, memory_order_release);
		uint64_t one = 1;
		(void)!write(l->stage->wake_fd, &one, sizeof(one));
	}
	return NULL;
}

struct fp_vf_stage *fp_vf_create(unsigned lanes, int wake_fd, struct fp_counters *ctr)
{
	TG_ASSERT(lanes >= 1 && lanes <= VF_LANES_MAX);
	struct fp_vf_stage *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->lanes = lanes;
	s->wake_fd = wake_fd;
	s->ctr = ctr;
	for (unsigned i = 0; i < lanes; i++) {
		struct fp_vf_lane *l = &s->lane[i];
		l->stage = s;
		l->ns_per_signature = VF_NS_PER_SIGNATURE_START;
		l->jobs = calloc(VF_LANE_JOBS, sizeof(*l->jobs));
		l->efd = eventfd(0, EFD_CLOEXEC);
		if (l->jobs == NULL || l->efd < 0 || pthread_create(&l->thread, NULL, lane_main, l) != 0) {
			fp_vf_destroy(s);
			return NULL;
		}
		l->started = true;
		pthread_setname_np(l->thread, "tapgate-verify");
	}
	return s;
}

void fp_vf_destroy(struct fp_vf_stage *s)
{
	if (s == NULL)
		return;
	atomic_store(&s->stopping, true);
	for (unsigned i = 0; i < s->lanes; i++) {
		struct fp_vf_lane *l = &s->lane[i];
		uint64_t one = 1;
		if (l->started) {
			(void)!write(l->efd, &one, sizeof(one));
			pthread_join(l->thread, NULL);
		}
		if (l->efd > 0)
			close(l->efd);
		free(l->jobs);
	}
	free(s);
}

struct fp_job *fp_vf_slot(struct fp_vf_stage *s)
{
	struct fp_vf_lane *best = NULL;
	for (unsigned i = 0; i < s->lanes; i++) {
		struct fp_vf_lane *l = &s->lane[i];
		uint64_t submitted = atomic_load_explicit(&l->submitted, memory_order_relaxed);
		if (submitted - l->collected == VF_LANE_JOBS)
			continue;
		if (best == NULL || l->signatures_queued < best->signatures_queued)
			best = l;
	}
	if (best == NULL)
		return NULL;
	s->pick = (unsigned)(best - s->lane);
	return &best->jobs[atomic_load_explicit(&best->submitted, memory_order_relaxed) & (VF_LANE_JOBS - 1)];
}

void fp_vf_submit(struct fp_vf_stage *s)
{
	struct fp_vf_lane *l = &s->lane[s->pick];
	uint64_t submitted = atomic_load_explicit(&l->submitted, memory_order_relaxed);
	TG_ASSERT_HOT(submitted - l->collected < VF_LANE_JOBS); /* fp_vf_slot found this lane room */
	l->signatures_queued += l->jobs[submitted & (VF_LANE_JOBS - 1)].signatures;
	atomic_store_explicit(&l->submitted, submitted + 1, memory_order_seq_cst);
	if (atomic_load_explicit(&l->sleeping, memory_order_seq_cst)) {
		uint64_t one = 1;
		(void)!write(l->efd, &one, sizeof(one));
	}
}

struct fp_job *fp_vf_ready(struct fp_vf_stage *s)
{
	for (unsigned k = 0; k < s->lanes; k++) {
		unsigned i = (s->next_ready + k) % s->lanes;
		struct fp_vf_lane *l = &s->lane[i];
		if (l->collected < atomic_load_explicit(&l->verified, memory_order_acquire)) {
			s->next_ready = i;
			return &l->jobs[l->collected & (VF_LANE_JOBS - 1)];
		}
	}
	return NULL;
}

void fp_vf_collect(struct fp_vf_stage *s)
{
	struct fp_vf_lane *l = &s->lane[s->next_ready];
	TG_ASSERT(l->collected < atomic_load(&l->verified));
	l->signatures_queued -= l->jobs[l->collected & (VF_LANE_JOBS - 1)].signatures;
	l->collected++;
	s->next_ready = (s->next_ready + 1) % s->lanes;
}

bool fp_vf_holds(const struct fp_vf_stage *s, uint32_t validator_id, uint64_t frame_seq)
{
	for (unsigned i = 0; i < s->lanes; i++) {
		const struct fp_vf_lane *l = &s->lane[i];
		uint64_t submitted = atomic_load_explicit(&l->submitted, memory_order_relaxed);
		for (uint64_t j = l->collected; j < submitted; j++) {
			const struct fp_job *job = &l->jobs[j & (VF_LANE_JOBS - 1)];
			if (job->hdr.frame_seq == frame_seq && job->hdr.validator_id == validator_id)
				return true;
		}
	}
	return false;
}

bool fp_vf_idle(const struct fp_vf_stage *s)
{
	for (unsigned i = 0; i < s->lanes; i++)
		if (s->lane[i].collected != atomic_load(&s->lane[i].submitted))
			return false;
	return true;
}

uint64_t fp_vf_backlog_us(const struct fp_vf_stage *s)
{
	uint64_t worst_ns = 0;
	for (unsigned i = 0; i < s->lanes; i++) {
		const struct fp_vf_lane *l = &s->lane[i];
		uint64_t ns = l->signatures_queued * atomic_load_explicit(&l->ns_per_signature, memory_order_relaxed);
		worst_ns = ns > worst_ns ? ns : worst_ns;
	}
	return worst_ns / 1000u;
}
