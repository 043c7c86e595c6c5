/*
 * out.c - outbox files, written the way a bank's file exchange expects: the
 * data goes to a temporary name in the counterparty's folder, is fsynced and
 * renamed into place, and only then is NAME.sha256 (sha256sum's format)
 * written beside it, the same way. A reader that waits for the checksum
 * file never sees a partial file; a crash leaves at most a temporary file,
 * which the next write of the same name replaces.
 */
#include "settle/internal.h"

#include "base/assert.h"

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

int settle_out_open(struct out_file *o, struct settle_writer *wr, const char *outbox, const char *party, const char *name, char *err, size_t err_len)
{
	memset(o, 0, sizeof(*o));
	o->wr = wr;
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
		settle_out_abort(o);
		snprintf(err, err_len, "SHA-256: cannot start a digest");
		return SETTLE_ERR_NOMEM;
	}
	return 0;
}

#define WRITEBACK_BYTES (32u << 20)

/*
 * The writer thread: buffers are written and digested there, in the order
 * they were handed over, while the caller formats the next ones (a close of
 * a 10-million-tap day writes over a gigabyte: the write() calls were a
 * quarter of its time). Each file has two buffers; the caller waits only
 * when both are with the writer. The thread belongs to the close that
 * starts it (build.c) and is joined there, after its last file.
 */
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
	struct settle_writer *wq = arg;
	pthread_mutex_lock(&wq->lock);
	for (;;) {
		while (wq->head == wq->tail && !wq->stopping)
			pthread_cond_wait(&wq->work, &wq->lock);
		if (wq->head == wq->tail)
			break; /* stopping, and nothing left */
		unsigned slot = wq->head % SETTLE_WRITER_SLOTS;
		struct out_file *o = wq->q[slot].o;
		unsigned b = wq->q[slot].b;
		size_t n = wq->q[slot].n;
		pthread_mutex_unlock(&wq->lock);
		block_write(o, o->bufs[b], n);
		pthread_mutex_lock(&wq->lock);
		wq->head++;
		o->busy[b] = 0;
		pthread_cond_broadcast(&wq->done);
	}
	pthread_mutex_unlock(&wq->lock);
	return NULL;
}

void settle_writer_start(struct settle_writer *wq)
{
	memset(wq, 0, sizeof(*wq));
	pthread_mutex_init(&wq->lock, NULL);
	pthread_cond_init(&wq->work, NULL);
	pthread_cond_init(&wq->done, NULL);
	wq->running = pthread_create(&wq->thread, NULL, writer_main, wq) == 0;
}

void settle_writer_stop(struct settle_writer *wq)
{
	if (wq->running) {
		pthread_mutex_lock(&wq->lock);
		wq->stopping = true;
		pthread_cond_signal(&wq->work);
		pthread_mutex_unlock(&wq->lock);
		int joined = pthread_join(wq->thread, NULL);
		TG_ASSERT(joined == 0);
		TG_ASSERT(wq->head == wq->tail); /* every buffer handed over was written */
		wq->running = false;
	}
	pthread_cond_destroy(&wq->done);
	pthread_cond_destroy(&wq->work);
	pthread_mutex_destroy(&wq->lock);
}

/* Hand the current buffer to the writer thread (or write it here if there is none) and take the other. */
static void out_flush(struct out_file *o)
{
	struct settle_writer *wq = o->wr;
	unsigned b = o->cur;
	if (o->n == 0)
		return;
	if (!wq || !wq->running) {
		block_write(o, o->bufs[b], o->n);
		o->n = 0;
		return;
	}
	pthread_mutex_lock(&wq->lock);
	TG_ASSERT(!wq->stopping);
	while (wq->tail - wq->head == SETTLE_WRITER_SLOTS)
		pthread_cond_wait(&wq->done, &wq->lock);
	o->busy[b] = 1;
	wq->q[wq->tail % SETTLE_WRITER_SLOTS].o = o;
	wq->q[wq->tail % SETTLE_WRITER_SLOTS].b = b;
	wq->q[wq->tail % SETTLE_WRITER_SLOTS].n = o->n;
	wq->tail++;
	pthread_cond_signal(&wq->work);
	o->cur = b ^ 1;
	while (o->busy[o->cur])
		pthread_cond_wait(&wq->done, &wq->lock);
	pthread_mutex_unlock(&wq->lock);
	o->n = 0;
}

/* Wait until the writer thread has written every buffer of o handed to it. */
static void out_wait(struct out_file *o)
{
	struct settle_writer *wq = o->wr;
	if (!wq || !wq->running)
		return;
	pthread_mutex_lock(&wq->lock);
	while (o->busy[0] || o->busy[1])
		pthread_cond_wait(&wq->done, &wq->lock);
	pthread_mutex_unlock(&wq->lock);
}

void settle_out_write(struct out_file *o, const void *data, size_t len)
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

void settle_out_line(struct out_file *o, const struct settle_line *l)
{
	if (l->n >= sizeof(l->b))
		o->failed = true; /* ln_* stop at the end of the buffer: a line cut short */
	else
		settle_out_write(o, l->b, l->n);
}

void settle_out_printf(struct out_file *o, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		o->failed = true;
	else
		settle_out_write(o, buf, (size_t)n);
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

int settle_out_commit(struct out_file *o, uint8_t sha256[32], char *err, size_t err_len)
{
	unsigned len = 0;
	out_flush(o);
	out_wait(o);
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

void settle_out_abort(struct out_file *o)
{
	out_wait(o); /* the writer thread may hold a buffer of it */
	if (o->f)
		fclose(o->f);
	o->f = NULL;
	EVP_MD_CTX_free(o->md);
	o->md = NULL;
	unlink(o->tmp);
}

char *settle_read_whole(const char *path, size_t *len)
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

