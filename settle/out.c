/*
 * out.c - outbox files, written the way a bank's file exchange expects: the
 * data goes to a temporary name in the counterparty's folder, is fsynced and
 * renamed into place, and only then is NAME.sha256 (sha256sum's format)
 * written beside it, the same way. A reader that waits for the checksum
 * file never sees a partial file; a crash leaves at most a temporary file,
 * which the next write of the same name replaces.
 */
#include "settle/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int mkdirs(const char *path)
{
	char buf[sizeof(((struct out_file *)0)->dir)];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0750) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0750) != 0 && errno != EEXIST ? -1 : 0;
}

static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

/* A new file, 0640 at most whatever the umask: outbox files hold payment data. NULL with errno set. */
static FILE *create_private(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (fd >= 0 && !f) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return f;
}

int out_open(struct out_file *o, const char *outbox, const char *party, const char *name, char *err, size_t err_len)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->dir, sizeof(o->dir), "%s/%s", outbox, party);
	snprintf(o->name, sizeof(o->name), "%s", name);
	snprintf(o->path, sizeof(o->path), "%s/%s", o->dir, name);
	snprintf(o->tmp, sizeof(o->tmp), "%s/.%s.tmp", o->dir, name);
	if (mkdirs(o->dir) != 0) {
		snprintf(err, err_len, "outbox %s: %s", o->dir, strerror(errno));
		return SETTLE_ERR_IO;
	}
	if (!(o->f = create_private(o->tmp))) {
		snprintf(err, err_len, "outbox %s: %s", o->tmp, strerror(errno));
		return SETTLE_ERR_IO;
	}
	if (!(o->md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(o->md, EVP_sha256(), NULL) != 1) {
		out_abort(o);
		snprintf(err, err_len, "SHA-256: cannot start a digest");
		return SETTLE_ERR_NOMEM;
	}
	return 0;
}

#define WRITEBACK_BYTES (32u << 20)
#define QUEUE_SLOTS 64u

/*
 * The writer thread: buffers are written and digested there, in the order
 * they were handed over, while the caller formats the next ones (a close of
 * a 10-million-tap day writes over a gigabyte: the write() calls were a
 * quarter of its time). Each file has two buffers; the caller waits only
 * when both are with the writer.
 */
static struct {
	pthread_once_t once;
	pthread_mutex_t lock;
	pthread_cond_t work, done;
	struct {
		struct out_file *o;
		unsigned b;
		size_t n;
	} q[QUEUE_SLOTS];
	unsigned head, tail;
	bool running;
} wq = {.once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER,
	.done = PTHREAD_COND_INITIALIZER};

static void block_write(struct out_file *o, const char *buf, size_t n)
{
	if (!o->failed && n && (fwrite(buf, 1, n, o->f) != n || EVP_DigestUpdate(o->md, buf, n) != 1))
		o->failed = true;
	o->unsynced += n;
	/* start writing back what is written so far, so that the fsync at the end has little left to do */
	if (o->unsynced >= WRITEBACK_BYTES && !o->failed && fflush(o->f) == 0) {
		(void)sync_file_range(fileno(o->f), 0, 0, SYNC_FILE_RANGE_WRITE);
		o->unsynced = 0;
	}
}

static void *writer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&wq.lock);
	for (;;) {
		while (wq.head == wq.tail)
			pthread_cond_wait(&wq.work, &wq.lock);
		unsigned slot = wq.head % QUEUE_SLOTS;
		struct out_file *o = wq.q[slot].o;
		unsigned b = wq.q[slot].b;
		size_t n = wq.q[slot].n;
		pthread_mutex_unlock(&wq.lock);
		block_write(o, o->bufs[b], n);
		pthread_mutex_lock(&wq.lock);
		wq.head++;
		o->busy[b] = 0;
		pthread_cond_broadcast(&wq.done);
	}
	return NULL;
}

static void writer_start(void)
{
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	wq.running = pthread_create(&t, &a, writer_main, NULL) == 0;
	pthread_attr_destroy(&a);
}

/* Hand the current buffer to the writer thread (or write it here if there is none) and take the other. */
static void out_flush(struct out_file *o)
{
	pthread_once(&wq.once, writer_start);
	unsigned b = o->cur;
	if (o->n == 0)
		return;
	if (!wq.running) {
		block_write(o, o->bufs[b], o->n);
		o->n = 0;
		return;
	}
	pthread_mutex_lock(&wq.lock);
	while (wq.tail - wq.head == QUEUE_SLOTS)
		pthread_cond_wait(&wq.done, &wq.lock);
	o->busy[b] = 1;
	wq.q[wq.tail % QUEUE_SLOTS].o = o;
	wq.q[wq.tail % QUEUE_SLOTS].b = b;
	wq.q[wq.tail % QUEUE_SLOTS].n = o->n;
	wq.tail++;
	pthread_cond_signal(&wq.work);
	o->cur = b ^ 1;
	while (o->busy[o->cur])
		pthread_cond_wait(&wq.done, &wq.lock);
	pthread_mutex_unlock(&wq.lock);
	o->n = 0;
}

/* Wait until the writer thread has written every buffer of o. */
static void out_drain(struct out_file *o)
{
	out_flush(o);
	pthread_mutex_lock(&wq.lock);
	while (o->busy[0] || o->busy[1])
		pthread_cond_wait(&wq.done, &wq.lock);
	pthread_mutex_unlock(&wq.lock);
}

void out_write(struct out_file *o, const void *data, size_t len)
{
	while (len > 0) {
		if (o->n == OUT_BUF_BYTES)
			out_flush(o);
		size_t take = len < OUT_BUF_BYTES - o->n ? len : OUT_BUF_BYTES - o->n;
		memcpy(o->bufs[o->cur] + o->n, data, take);
		o->n += take;
		data = (const char *)data + take;
		len -= take;
	}
}

void out_line(struct out_file *o, const struct line *l)
{
	if (l->n >= sizeof(l->b))
		o->failed = true; /* ln_* stop at the end of the buffer: a line cut short */
	else
		out_write(o, l->b, l->n);
}

void out_printf(struct out_file *o, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		o->failed = true;
	else
		out_write(o, buf, (size_t)n);
}

static int write_atomic(const char *dir, const char *tmp, const char *path, const void *data, size_t len)
{
	FILE *f = create_private(tmp);
	if (!f)
		return -1;
	bool ok = fwrite(data, 1, len, f) == len && fflush(f) == 0 && fsync(fileno(f)) == 0;
	ok &= fclose(f) == 0;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return sync_dir(dir);
}

int out_commit(struct out_file *o, uint8_t sha256[32], char *err, size_t err_len)
{
	unsigned len = 0;
	out_drain(o);
	bool ok = !o->failed && fflush(o->f) == 0 && fsync(fileno(o->f)) == 0;
	ok &= fclose(o->f) == 0;
	o->f = NULL;
	ok = ok && EVP_DigestFinal_ex(o->md, sha256, &len) == 1 && len == 32;
	EVP_MD_CTX_free(o->md);
	o->md = NULL;
	if (!ok || rename(o->tmp, o->path) != 0 || sync_dir(o->dir) != 0) {
		snprintf(err, err_len, "%s: %s", o->path, strerror(errno ? errno : EIO));
		unlink(o->tmp);
		return SETTLE_ERR_IO;
	}
	char line[FILE_NAME_MAX + 80], sum_tmp[900], sum_path[900];
	int n = 0;
	for (unsigned i = 0; i < 32; i++)
		n += snprintf(line + n, sizeof(line) - (size_t)n, "%02x", sha256[i]);
	n += snprintf(line + n, sizeof(line) - (size_t)n, "  %s\n", o->name);
	snprintf(sum_tmp, sizeof(sum_tmp), "%s/.%s.sha256.tmp", o->dir, o->name);
	snprintf(sum_path, sizeof(sum_path), "%s.sha256", o->path);
	if (write_atomic(o->dir, sum_tmp, sum_path, line, (size_t)n) != 0) {
		snprintf(err, err_len, "%s: %s", sum_path, strerror(errno ? errno : EIO));
		return SETTLE_ERR_IO;
	}
	return 0;
}

void out_abort(struct out_file *o)
{
	pthread_mutex_lock(&wq.lock); /* the writer thread may hold a buffer of it */
	while (o->busy[0] || o->busy[1])
		pthread_cond_wait(&wq.done, &wq.lock);
	pthread_mutex_unlock(&wq.lock);
	if (o->f)
		fclose(o->f);
	o->f = NULL;
	EVP_MD_CTX_free(o->md);
	o->md = NULL;
	unlink(o->tmp);
}

char *read_whole(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap + 1);
	while (buf) {
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (n < cap)
			break;
		char *b = realloc(buf, cap * 2 + 1);
		if (!b) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = b;
		cap *= 2;
	}
	bool bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		return NULL;
	}
	if (buf) {
		buf[n] = 0;
		*len = n;
	}
	return buf;
}

/* A line's text as a string (at most 31 characters: amounts and times). */
static void line_text(const struct line *l, char out[32])
{
	size_t n = l->n < 31 ? l->n : 31;
	memcpy(out, l->b, n);
	out[n] = '\0';
}

void fen_text(int64_t fen, char out[32])
{
	struct line l = {.n = 0};
	ln_yuan(&l, fen);
	line_text(&l, out);
}

void utc_text(uint64_t us, char out[32])
{
	struct line l = {.n = 0};
	ln_utc(&l, us);
	line_text(&l, out);
}

/* --- lines */

void ln_str(struct line *l, const char *s)
{
	size_t n = strlen(s);
	if (n > sizeof(l->b) - l->n)
		n = sizeof(l->b) - l->n;
	memcpy(l->b + l->n, s, n);
	l->n += n;
}

void ln_chr(struct line *l, char c)
{
	if (l->n < sizeof(l->b))
		l->b[l->n++] = c;
}

static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
				     "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
				     "8081828384858687888990919293949596979899";

/* Two digits at a time, in 32-bit arithmetic below 10^8: tokens and card numbers have 10 to 19 digits. */
void ln_u64(struct line *l, uint64_t v)
{
	char t[24];
	int i = 24;
	while (v >= 100000000u) {
		uint32_t low = (uint32_t)(v % 100000000u);
		v /= 100000000u;
		for (int k = 0; k < 4; k++, low /= 100) {
			i -= 2;
			memcpy(t + i, digit_pairs + 2 * (low % 100), 2);
		}
	}
	uint32_t w = (uint32_t)v;
	while (w >= 100) {
		i -= 2;
		memcpy(t + i, digit_pairs + 2 * (w % 100), 2);
		w /= 100;
	}
	if (w >= 10) {
		i -= 2;
		memcpy(t + i, digit_pairs + 2 * w, 2);
	} else {
		t[--i] = (char)('0' + w);
	}
	size_t n = (size_t)(24 - i);
	if (n > sizeof(l->b) - l->n)
		n = sizeof(l->b) - l->n;
	memcpy(l->b + l->n, t + i, n);
	l->n += n;
}

void ln_i64(struct line *l, int64_t v)
{
	if (v < 0) {
		ln_chr(l, '-');
		ln_u64(l, (uint64_t)0 - (uint64_t)v);
	} else {
		ln_u64(l, (uint64_t)v);
	}
}

void ln_hex(struct line *l, uint64_t v, unsigned digits)
{
	static const char hexd[] = "0123456789abcdef";
	while (digits-- > 0)
		ln_chr(l, hexd[(v >> (4 * digits)) & 15]);
}

void ln_yuan(struct line *l, int64_t fen)
{
	uint64_t a = fen < 0 ? (uint64_t)0 - (uint64_t)fen : (uint64_t)fen;
	if (fen < 0)
		ln_chr(l, '-');
	ln_u64(l, a / 100);
	ln_chr(l, '.');
	ln_chr(l, (char)('0' + a % 100 / 10));
	ln_chr(l, (char)('0' + a % 10));
}

/* UTC, to the second; the civil date from the day number by arithmetic (H. Hinnant's days-to-civil). */
void ln_utc(struct line *l, uint64_t us)
{
	int64_t secs = (int64_t)(us / 1000000u), z = secs / 86400 + 719468, sod = secs % 86400;
	int64_t era = z / 146097, doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
	int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9, y = yoe + era * 400 + (m <= 2);
	char b[20];
	memcpy(b, digit_pairs + 2 * (y / 100 % 100), 2);
	memcpy(b + 2, digit_pairs + 2 * (y % 100), 2);
	b[4] = '-';
	memcpy(b + 5, digit_pairs + 2 * m, 2);
	b[7] = '-';
	memcpy(b + 8, digit_pairs + 2 * d, 2);
	b[10] = 'T';
	memcpy(b + 11, digit_pairs + 2 * (sod / 3600), 2);
	b[13] = ':';
	memcpy(b + 14, digit_pairs + 2 * (sod / 60 % 60), 2);
	b[16] = ':';
	memcpy(b + 17, digit_pairs + 2 * (sod % 60), 2);
	b[19] = 'Z';
	size_t n = sizeof(b) <= sizeof(l->b) - l->n ? sizeof(b) : sizeof(l->b) - l->n;
	memcpy(l->b + l->n, b, n);
	l->n += n;
}

void ln_token(struct line *l, uint8_t medium, uint32_t issuer, uint64_t token)
{
	if (medium == 1) {
		ln_str(l, "epurse:");
		ln_u64(l, issuer);
		ln_chr(l, ':');
	} else {
		ln_str(l, medium == 2 ? "quickpass:" : "qr:");
	}
	ln_u64(l, token);
}
