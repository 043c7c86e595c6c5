/*
 * dedup.c - the in-memory set of identity keys of recent taps.
 *
 * Every tap the gateway accepts is looked up here before it is queued: a key
 * seen before means a retransmission (same content) or a conflict (other
 * content). The set must hold two weeks of a city's taps in memory, so a slot
 * is 32 bytes (128-bit key, 64-bit content hash, tap time, validator) and
 * the table has 1.5 slots per tap it may hold: 48 bytes per tap, all
 * allocated at start-up. Open addressing with linear probing keeps a lookup
 * to one or two cache lines; slots are mapped with a multiply-shift of the
 * key's high half, so the slot count need not be a power of two (which would
 * waste up to half the memory). Expiry removes slots with backward-shift
 * deletion (no tombstones), a bounded number of slots per call, sweeping
 * round the table, so the hot path never pauses for a rehash.
 */
#include "fastpath/fastpath.h"
#include "base/assert.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct fp_dedup_slot {
	uint64_t key_lo, key_hi; /* 0, 0: empty */
	uint64_t content;
	uint32_t tap_time_s;
	uint32_t validator_id;
};
static_assert(sizeof(struct fp_dedup_slot) == 32, "a dedup slot is 32 bytes");

struct fp_dedup {
	struct fp_dedup_slot *slots;
	uint64_t slots_count;
	uint64_t taps_max;
	uint64_t live;
	uint64_t sweep_at; /* next slot the expiry sweep looks at */
	size_t bytes;
};

static inline uint64_t slot_home(const struct fp_dedup *d, uint64_t key_hi)
{
	return (uint64_t)(((unsigned __int128)key_hi * d->slots_count) >> 64);
}

static inline bool slot_empty(const struct fp_dedup_slot *s)
{
	return (s->key_lo | s->key_hi) == 0;
}

struct fp_dedup *fp_dedup_create(uint64_t taps_max)
{
	struct fp_dedup *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->taps_max = taps_max;
	d->slots_count = taps_max + taps_max / 2;
	d->bytes = d->slots_count * sizeof(struct fp_dedup_slot);
	d->slots = mmap(NULL, d->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (d->slots == MAP_FAILED) {
		free(d);
		return NULL;
	}
	/* Touch every page now: a first-touch page fault costs microseconds, and
	 * random keys would take one per insert for the first hours of a run.
	 * Huge pages, where the kernel has them, also spare the TLB. */
	madvise(d->slots, d->bytes, MADV_HUGEPAGE);
	memset(d->slots, 0, d->bytes);
	return d;
}

void fp_dedup_free(struct fp_dedup *d)
{
	if (d == NULL)
		return;
	munmap(d->slots, d->bytes);
	free(d);
}

/*
 * The slot holding key, or the empty slot where it would go. The table is
 * never more than 2/3 full (taps_max live in 1.5 * taps_max slots), so a
 * probe always ends at an empty slot within the table's size.
 */
static struct fp_dedup_slot *slot_probe(const struct fp_dedup *d, struct fp_key key)
{
	TG_ASSERT((key.lo | key.hi) != 0);
	uint64_t i = slot_home(d, key.hi);
	for (uint64_t probes = 0; probes < d->slots_count; probes++) {
		struct fp_dedup_slot *s = &d->slots[i];
		if (slot_empty(s) || (s->key_lo == key.lo && s->key_hi == key.hi))
			return s;
		i = i + 1 == d->slots_count ? 0 : i + 1;
	}
	abort(); /* unreachable while live <= taps_max < slots_count */
}

/* What the set says of a tap whose key is in slot s. */
static enum fp_dedup_result slot_verdict(const struct fp_dedup_slot *s, uint64_t content, uint32_t validator_id)
{
	if (s->validator_id != validator_id)
		return FP_DEDUP_OTHER_VALIDATOR;
	return s->content == content ? FP_DEDUP_DUPLICATE : FP_DEDUP_CONFLICT;
}

enum fp_dedup_result fp_dedup_insert(struct fp_dedup *d, struct fp_key key, uint64_t content,
				     uint32_t tap_time_s, uint32_t validator_id)
{
	struct fp_dedup_slot *s = slot_probe(d, key);
	if (!slot_empty(s))
		return slot_verdict(s, content, validator_id);
	if (d->live >= d->taps_max)
		return FP_DEDUP_FULL;
	*s = (struct fp_dedup_slot){key.lo, key.hi, content, tap_time_s, validator_id};
	d->live++;
	return FP_DEDUP_NEW;
}

/*
 * The same probe as fp_dedup_insert() without inserting: FP_DEDUP_NEW means
 * "not in the set". The ingress asks this before an expensive check (a QR
 * signature) so that a copy of a tap already decided costs one probe.
 */
enum fp_dedup_result fp_dedup_find(const struct fp_dedup *d, struct fp_key key, uint64_t content,
				   uint32_t validator_id)
{
	const struct fp_dedup_slot *s = slot_probe(d, key);
	return slot_empty(s) ? FP_DEDUP_NEW : slot_verdict(s, content, validator_id);
}

/* Is home cyclically within (hole, at]? Then the entry at at may not move to hole. */
static inline bool home_between(uint64_t hole, uint64_t home, uint64_t at)
{
	if (hole <= at)
		return hole < home && home <= at;
	return hole < home || home <= at;
}

/* Remove slot i, shifting later entries of its probe run back into the hole. */
static void slot_remove(struct fp_dedup *d, uint64_t hole)
{
	uint64_t at = hole;
	for (uint64_t steps = 0; steps < d->slots_count; steps++) {
		at = at + 1 == d->slots_count ? 0 : at + 1;
		struct fp_dedup_slot *s = &d->slots[at];
		if (slot_empty(s))
			break;
		if (home_between(hole, slot_home(d, s->key_hi), at))
			continue;
		d->slots[hole] = *s;
		hole = at;
	}
	memset(&d->slots[hole], 0, sizeof(d->slots[hole]));
	d->live--;
}

uint64_t fp_dedup_expire(struct fp_dedup *d, uint32_t cutoff_s, uint64_t slots_max)
{
	uint64_t removed = 0;
	if (slots_max > d->slots_count)
		slots_max = d->slots_count;
	for (uint64_t n = 0; n < slots_max; n++) {
		uint64_t i = d->sweep_at;
		struct fp_dedup_slot *s = &d->slots[i];
		/* A removal may shift a later entry into slot i: look at i again. */
		if (!slot_empty(s) && s->tap_time_s < cutoff_s) {
			slot_remove(d, i);
			removed++;
			continue;
		}
		d->sweep_at = i + 1 == d->slots_count ? 0 : i + 1;
	}
	return removed;
}

uint64_t fp_dedup_count(const struct fp_dedup *d)
{
	return d->live;
}

uint64_t fp_dedup_bytes(const struct fp_dedup *d)
{
	return d->bytes;
}
