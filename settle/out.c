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
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int mkdirs(const char *path)
{
	char buf[sizeof(((struct out_file *)0)->dir)];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
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

int out_open(struct out_file *o, const char *outbox, const char *party, const char *name, char *err, size_t err_len)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->dir, sizeof(o->dir), "%s/%s", outbox, party);
	snprintf(o->name, sizeof(o->name), "%s", name);
	snprintf(o->path, sizeof(o->path), "%s/%s", o->dir, name);
	snprintf(o->tmp, sizeof(o->tmp), "%s/.%s.tmp", o->dir, name);
	if (mkdirs(o->dir) != 0 || !(o->f = fopen(o->tmp, "w"))) {
		snprintf(err, err_len, "%s: %s", o->f ? o->tmp : o->dir, strerror(errno));
		return SETTLE_ERR_IO;
	}
	setvbuf(o->f, NULL, _IOFBF, 1 << 20);
	if (!(o->md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(o->md, EVP_sha256(), NULL) != 1) {
		out_abort(o);
		snprintf(err, err_len, "SHA-256: cannot start a digest");
		return SETTLE_ERR_NOMEM;
	}
	return 0;
}

void out_write(struct out_file *o, const void *data, size_t len)
{
	if (o->failed)
		return;
	if (fwrite(data, 1, len, o->f) != len || EVP_DigestUpdate(o->md, data, len) != 1)
		o->failed = true;
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
	FILE *f = fopen(tmp, "w");
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

void fen_text(int64_t fen, char out[32])
{
	uint64_t a = fen < 0 ? (uint64_t)-fen : (uint64_t)fen;
	snprintf(out, 32, "%s%llu.%02llu", fen < 0 ? "-" : "", (unsigned long long)(a / 100),
		 (unsigned long long)(a % 100));
}
