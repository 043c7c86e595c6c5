/*
 * csv.c - a feed file parsed whole into rows of fields, with libcsv.
 *
 * libcsv (Debian's libcsv-dev) does the RFC 4180 work: quotes, doubled
 * quotes, commas and line ends inside quoted fields, CRLF. It does not say
 * where a field was, and every error must name file, line and column, so the
 * data is handed to it one physical line at a time and the line number is
 * kept here: a row's line is the line its first field ended on (a quoted
 * field with a line break inside is the only case where that differs from
 * the line it started on).
 *
 * Fields are copied into one growing arena; rows keep offsets while parsing
 * (the arena moves when it grows) and become pointers at the end.
 */
#include "fare/internal.h"

#include <csv.h>
#include <stdlib.h>
#include <string.h>

struct parse_state {
	struct csv_table *t;
	uint32_t line;
	size_t *offs; /* field offsets into the arena */
	size_t noffs, offs_cap;
	struct { uint32_t line, first, n; } *rows;
	size_t nrows, rows_cap;
	bool in_row;
	bool nomem;
	uint32_t open_line, open_col; /* where the field being parsed began (for a quote never closed) */
};

static bool arena_put(struct csv_table *t, const void *s, size_t len, size_t *off)
{
	if (t->arena_len + len + 1 > t->arena_cap) {
		size_t cap = t->arena_cap ? t->arena_cap * 2 : 4096;
		while (cap < t->arena_len + len + 1)
			cap *= 2;
		char *a = realloc(t->arena, cap);
		if (!a)
			return false;
		t->arena = a;
		t->arena_cap = cap;
	}
	*off = t->arena_len;
	memcpy(t->arena + t->arena_len, s, len);
	t->arena[t->arena_len + len] = '\0';
	t->arena_len += len + 1;
	return true;
}

static void on_field(void *s, size_t len, void *data)
{
	struct parse_state *ps = data;
	if (ps->nomem)
		return;
	if (!ps->in_row) {
		if (ps->nrows == ps->rows_cap) {
			size_t cap = ps->rows_cap ? ps->rows_cap * 2 : 64;
			void *r = realloc(ps->rows, cap * sizeof(*ps->rows));
			if (!r) {
				ps->nomem = true;
				return;
			}
			ps->rows = r;
			ps->rows_cap = cap;
		}
		ps->rows[ps->nrows].line = ps->line;
		ps->rows[ps->nrows].first = (uint32_t)ps->noffs;
		ps->rows[ps->nrows].n = 0;
		ps->nrows++;
		ps->in_row = true;
	}
	if (ps->noffs == ps->offs_cap) {
		size_t cap = ps->offs_cap ? ps->offs_cap * 2 : 256;
		size_t *o = realloc(ps->offs, cap * sizeof(*o));
		if (!o) {
			ps->nomem = true;
			return;
		}
		ps->offs = o;
		ps->offs_cap = cap;
	}
	if (!arena_put(ps->t, s ? s : "", s ? len : 0, &ps->offs[ps->noffs])) {
		ps->nomem = true;
		return;
	}
	ps->noffs++;
	ps->rows[ps->nrows - 1].n++;
	ps->open_line = ps->line;
	ps->open_col = ps->rows[ps->nrows - 1].n + 1;
}

static void on_row(int c, void *data)
{
	struct parse_state *ps = data;
	(void)c;
	ps->in_row = false;
	ps->open_line = ps->line + 1; /* rows end at a line break: the next field starts on the next line */
	ps->open_col = 1;
}

/* Turn offsets into pointers: header from row 0, data rows after it. */
static int build(struct csv_table *t, struct parse_state *ps)
{
	char **ptrs = malloc((ps->noffs ? ps->noffs : 1) * sizeof(*ptrs));
	t->rows = calloc(ps->nrows ? ps->nrows : 1, sizeof(*t->rows));
	if (!ptrs || !t->rows) {
		free(ptrs);
		return FARE_ERR_NOMEM;
	}
	for (size_t i = 0; i < ps->noffs; i++)
		ptrs[i] = t->arena + ps->offs[i];
	t->header = ptrs; /* row 0's fields come first: the header */
	t->ncols = ps->nrows ? ps->rows[0].n : 0;
	for (size_t r = 1; r < ps->nrows; r++) {
		struct csv_row *row = &t->rows[t->nrows++];
		row->line = ps->rows[r].line;
		row->nfields = ps->rows[r].n;
		row->fields = ptrs + ps->rows[r].first;
	}
	return 0;
}

/* libcsv trims spaces and tabs around unquoted fields by default; a feed's " 2.00" is not "2.00". */
static int no_space(unsigned char c)
{
	(void)c;
	return 0;
}

int fare_csv_table_parse(struct csv_table *t, const char *file, const char *data, size_t len, char *err,
		    size_t err_len)
{
	struct csv_parser p;
	struct parse_state ps = {.t = t, .line = 1, .open_line = 1, .open_col = 1};
	memset(t, 0, sizeof(*t));
	t->file = file;
	if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0)
		return FARE_ERR_NOMEM;
	csv_set_space_func(&p, no_space);
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) { /* UTF-8 byte-order mark */
		data += 3;
		len -= 3;
	}
	int rc = 0;
	size_t pos = 0;
	while (pos < len && rc == 0) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t chunk = nl ? (size_t)(nl - (data + pos)) + 1 : len - pos;
		if (csv_parse(&p, data + pos, chunk, on_field, on_row, &ps) != chunk) {
			snprintf(err, err_len, "%s:%u:%u: CSV syntax: %s", file, ps.line,
				 ps.open_line == ps.line ? ps.open_col : 1, csv_strerror(csv_error(&p)));
			rc = FARE_ERR_FEED;
		}
		pos += chunk;
		if (nl && rc == 0)
			ps.line++;
	}
	if (rc == 0 && csv_fini(&p, on_field, on_row, &ps) != 0) {
		snprintf(err, err_len, "%s:%u:%u: CSV syntax: a quote opened in this field is never closed", file,
			 ps.open_line, ps.open_col);
		rc = FARE_ERR_FEED;
	}
	csv_free(&p);
	if (rc == 0 && ps.nomem)
		rc = FARE_ERR_NOMEM;
	if (rc == 0 && ps.nrows == 0) {
		snprintf(err, err_len, "%s:1:0: empty file: a header line is required", file);
		rc = FARE_ERR_FEED;
	}
	if (rc == 0)
		rc = build(t, &ps);
	free(ps.offs);
	free(ps.rows);
	if (rc != 0)
		fare_csv_table_free(t);
	return rc;
}

void fare_csv_table_free(struct csv_table *t)
{
	free(t->header);
	free(t->rows);
	free(t->arena);
	memset(t, 0, sizeof(*t));
}
