/*
 * deny.h - the one public header of deny/: the deny list's store format and
 * its read side.
 *
 * tapsettle keeps the deny list in its own LMDB environment (the [settle]
 * path): settle/ writes it, the gateway reads it to tell validators. This
 * module is the narrow door between the two, so that the gateway reads the
 * list without linking settlement: it owns the layout of the change log and
 * of the version, and reads them; it never writes.
 *
 * The part of the settle store this header defines:
 *   denylog  version (4, BE) -> struct deny_change, one per change, versions 1, 2, ...
 *   meta     DENY_META_VERSION -> u32 (host order): the list's version, its last change
 * (the deny database itself, medium + token -> what is owed, is settle/'s).
 */
#ifndef TAPGATE_DENY_H
#define TAPGATE_DENY_H

#include <stddef.h>
#include <stdint.h>

#define DENY_DBI_LOG "denylog"
#define DENY_DBI_META "meta"
#define DENY_META_VERSION "denyver"
#define DENY_VERSION_KEY_BYTES 4u

/* Errors: negative, see deny_strerror(). */
enum deny_error {
	DENY_ERR_ABSENT = -600, /* no settle store at that path yet: the list is empty */
	DENY_ERR_STORE = -601,  /* the store cannot be opened or read: the message says why */
	DENY_ERR_NOMEM = -602,
};
const char *deny_strerror(int err);

/* One change of the deny list (docs/PROTOCOL.md: validators fetch them). 16 bytes, as stored. */
struct deny_change {
	uint64_t token;
	uint8_t medium; /* the wire's medium (proto/proto.h): FP_MEDIUM_QUICKPASS or FP_MEDIUM_QR */
	uint8_t added;  /* 1 added, 0 removed */
	uint8_t pad[6];
};

/* The key of a change in DENY_DBI_LOG: its version, big-endian, so that the log reads in order. */
static inline void deny_version_key(uint8_t k[DENY_VERSION_KEY_BYTES], uint32_t version)
{
	for (unsigned i = 0; i < DENY_VERSION_KEY_BYTES; i++)
		k[i] = (uint8_t)(version >> (24 - 8 * i));
}

static inline uint32_t deny_version_of_key(const uint8_t k[DENY_VERSION_KEY_BYTES])
{
	return (uint32_t)k[0] << 24 | (uint32_t)k[1] << 16 | (uint32_t)k[2] << 8 | k[3];
}

/* Called for each change, oldest first; a non-zero return stops the walk. */
typedef int (*deny_change_fn)(void *arg, uint32_t version, const struct deny_change *ch);

/*
 * The read side on a transaction the caller holds (settle/ uses it on its
 * own environment; the reader below on its own): the list's version, and the
 * changes after version `since`. deny_log_read returns 0 or an LMDB error.
 */
struct MDB_txn;
uint32_t deny_log_version(struct MDB_txn *txn, unsigned meta_dbi);
int deny_log_read(struct MDB_txn *txn, unsigned log_dbi, uint32_t since, deny_change_fn fn, void *arg);

/*
 * A read-only handle on the deny list of the settle store at settle_path:
 * short read transactions only, never a lock the writer waits for.
 * deny_reader_open returns 0, DENY_ERR_ABSENT (no store yet: err untouched),
 * DENY_ERR_STORE or DENY_ERR_NOMEM (both with a message in err).
 */
struct deny_reader;
int deny_reader_open(struct deny_reader **out, const char *settle_path, char *err, size_t err_len);
/*
 * Walk the changes after version `since` (fn as above) and set *version to
 * the list's version. Returns 0 or DENY_ERR_STORE (message in err).
 */
int deny_reader_changes(struct deny_reader *r, uint32_t since, deny_change_fn fn, void *arg, uint32_t *version,
			char *err, size_t err_len);
void deny_reader_close(struct deny_reader *r);

#endif
