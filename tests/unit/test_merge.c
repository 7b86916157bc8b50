/*
 * test_merge.c — the hub's per-field merge rule (sync/src/merge.c): fast-
 * forward, same value, conflicts and their provisional winner (HLC, then
 * device id), three-way text merges through libgit2 (clean, conflicting,
 * NULL base, notes without a trailing newline, UTF-8), and value equality
 * across SQLite types. Every expectation is exact, including what libgit2's
 * line merge does with adjacent edits and appends at the same place.
 */
#include "check.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "relasi/error.h"
#include "relasi/merge.h"

static struct rl_value v_null(void)
{
	struct rl_value v = { RL_V_NULL, 0, 0.0, NULL };
	return v;
}

static struct rl_value v_int(int64_t i)
{
	struct rl_value v = { RL_V_INT, i, 0.0, NULL };
	return v;
}

static struct rl_value v_real(double d)
{
	struct rl_value v = { RL_V_REAL, 0, d, NULL };
	return v;
}

static struct rl_value v_text(const char *s)
{
	struct rl_value v = { RL_V_TEXT, 0, 0.0, s };
	return v;
}

static struct rl_field_state state(struct rl_value v, int64_t version, int64_t hlc,
				   const char *device)
{
	struct rl_field_state st;

	st.exists = 1;
	st.value = v;
	st.version = version;
	st.hlc = hlc;
	st.device = device;
	return st;
}

static struct rl_incoming incoming(struct rl_value v, int64_t base, int64_t hlc,
				   const char *device)
{
	struct rl_incoming in;

	memset(&in, 0, sizeof(in));

	in.value = v;
	in.base = base;
	in.hlc = hlc;
	in.device = device;
	return in;
}

/* Fill out with junk first, so a test sees whether merge reset every field. */
static int decide(const struct rl_field_state *cur, const struct rl_incoming *in,
		  int is_text, const struct rl_value *base, struct rl_merge_result *out)
{
	out->outcome = (enum rl_merge_outcome)99;
	out->merged = (char *)"junk";
	out->incoming_wins = 7;
	return rl_merge_field(cur, in, is_text, base, out);
}

/* Merge text; returns the merged string (caller frees) or NULL on conflict,
 * checking the invariants that tie *clean and *out together. */
static char *merge3(const char *base, const char *ours, const char *theirs)
{
	char *out = (char *)"junk";
	int clean = 7;
	int rc = rl_merge_text(base, ours, theirs, &clean, &out);

	CHECK_EQ_INT(rc, RL_OK);
	if (rc != RL_OK) {
		fprintf(stderr, "  rl_merge_text: %s\n", rl_error_message());
		return NULL;
	}
	CHECK(clean == 0 || clean == 1);
	CHECK((clean == 1) == (out != NULL));
	return clean ? out : NULL;
}

static void check_merge3(int line, const char *base, const char *ours, const char *theirs,
			 const char *want)
{
	char *got = merge3(base, ours, theirs);

	if (want) {
		CHECK_EQ_STR(got, want);
	} else {
		CHECK(got == NULL);
	}
	if ((want == NULL) != (got == NULL) || (want && got && strcmp(want, got) != 0))
		fprintf(stderr, "  (case at line %d)\n", line);
	free(got);
}

#define MERGE3(base, ours, theirs, want) check_merge3(__LINE__, base, ours, theirs, want)

static void test_text_merge(void)
{
	/* Edits separated by an unchanged line merge. */
	MERGE3("a\nb\nc\n", "A\nb\nc\n", "a\nb\nC\n", "A\nb\nC\n");
	/* Append on one side, edit the first line on the other. */
	MERGE3("a\nb\nc", "a\nb\nc\nd", "A\nb\nc", "A\nb\nc\nd");
	/* The brief's case: no trailing newline anywhere. Without the '\n'
	 * we append internally, libgit2 sees "b" -> "b\nc" touching the edit
	 * of "a" and conflicts. */
	MERGE3("a\nb", "a\nb\nc", "x\nb", "x\nb\nc");
	MERGE3("a\nb", "x\nb", "a\nb\nc", "x\nb\nc");
	/* Trailing newlines present everywhere are kept, exactly one. */
	MERGE3("a\nb\n", "a\nb\nc\n", "x\nb\n", "x\nb\nc\n");
	/* One side adds a trailing newline, the other edits: both survive. */
	MERGE3("a\nb\nc", "a\nb\nc\n", "X\nb\nc", "X\nb\nc\n");
	/* Deleting a line on one side, editing another on the other. */
	MERGE3("a\nb\nc\nd", "a\nc\nd", "a\nb\nc\nD", "a\nc\nD");
	/* Identical changes on both sides are not a conflict. */
	MERGE3("a\nb", "a\nb\nc", "a\nb\nc", "a\nb\nc");
	/* One side unchanged: the other side's text, verbatim. */
	MERGE3("a\nb", "a\nb", "a\nB\n\n", "a\nB\n\n");
	/* Empty everywhere; NULL base is the empty text. */
	MERGE3("", "", "", "");
	MERGE3(NULL, "x", "x", "x");
	MERGE3(NULL, "", "x", "x");

	/* Conflicts. Same line edited differently. */
	MERGE3("a\nb\nc", "a\nB\nc", "a\nbb\nc", NULL);
	/* Adjacent lines edited: xdiff needs an unchanged line between two
	 * hunks, so this is a conflict in libgit2 as in git. */
	MERGE3("a\nb\nc", "A\nb\nc", "a\nB\nc", NULL);
	/* Both append different lines at the end: the same insertion point,
	 * a conflict for git, but appends never conflict: both kept, ours first. */
	MERGE3("a\nb", "a\nb\nc", "a\nb\nd", "a\nb\nc\nd");
	MERGE3("a\nb\n", "a\nb\nc\n", "a\nb\nd\n", "a\nb\nc\nd\n");
	MERGE3("a\nb\n", "a\nb\nc", "a\nb\nd\ne", "a\nb\nc\nd\ne");
	/* Lines inserted elsewhere on one side, and both append: neither side
	 * deleted or changed a line, so both keep all theirs, the hub's first
	 * (FINDINGS 7 of tests/sim/simulate.py). */
	MERGE3("a\nd9", "a\nf32\nd9\na51\nc44", "a\nd9\nd51\nd53",
	       "a\nf32\nd9\na51\nc44\nd51\nd53");
	MERGE3("a\nb\nc", "a\nx\nb\nc", "a\ny\nb\nc", "a\nx\ny\nb\nc");
	/* ...but a side that also deleted a line conflicts as before. */
	MERGE3("a\nb\nc", "a\nc\nx", "a\nb\nc\ny", NULL);
	MERGE3("a\nb\nc", "a\nb\nx", "a\nb\nc\ny", NULL);
	/* ...but not an addition inside the last line: "b" -> "bc" is an edit. */
	MERGE3("a\nb", "a\nbc", "a\nbd", NULL);
	/* Empty base, two different notes. */
	MERGE3("", "x", "y", NULL);
	MERGE3(NULL, "x", "y", NULL);
	/* Delete a line against editing that line. */
	MERGE3("a\nb\nc", "a\nc", "a\nB\nc", NULL);
	/* Clearing the whole note against editing it. */
	MERGE3("a", "", "b", NULL);

	/* UTF-8 Indonesian notes, no trailing newline. */
	MERGE3("Pak Budi minta penawaran harga.\n"
	       "Kunjungan berikutnya: Kamis.\n"
	       "Suka kopi tubruk.",
	       "Pak Budi minta penawaran harga — sudah dikirim ✓.\n"
	       "Kunjungan berikutnya: Kamis.\n"
	       "Suka kopi tubruk.",
	       "Pak Budi minta penawaran harga.\n"
	       "Kunjungan berikutnya: Kamis.\n"
	       "Suka kopi tubruk.\n"
	       "Istri: Bu Siti, toko kué di Jl. Braga",
	       "Pak Budi minta penawaran harga — sudah dikirim ✓.\n"
	       "Kunjungan berikutnya: Kamis.\n"
	       "Suka kopi tubruk.\n"
	       "Istri: Bu Siti, toko kué di Jl. Braga");
	MERGE3("Kunjungan berikutnya: Kamis.",
	       "Kunjungan berikutnya: Jumat.",
	       "Kunjungan berikutnya: Sabtu pagi ☕.",
	       NULL);
}

/* Insertions on both sides (found by a hunt: git's union merge wrote base
 * lines twice when it joined two nearby conflict regions; appends to a note
 * ending in a newline kept a line both added twice; CRLF notes conflicted). */
static void test_text_inserts(void)
{
	/* Both insert after line 1 and append: every base line once. */
	MERGE3("Grosir elektronik\nBuka jam 8\nTutup hari Minggu",
	       "Grosir elektronik\nPemilik: Pak Hadi\nBuka jam 8\nTutup hari Minggu\nBayar tempo 30 hari",
	       "Grosir elektronik\nCabang di Cimahi\nBuka jam 8\nTutup hari Minggu\nParkir di belakang",
	       "Grosir elektronik\nPemilik: Pak Hadi\nCabang di Cimahi\nBuka jam 8\n"
	       "Tutup hari Minggu\nBayar tempo 30 hari\nParkir di belakang");
	/* A line both appended comes once, with or without the base's newline. */
	MERGE3("Grosir elektronik\n", "Grosir elektronik\nSudah bayar",
	       "Grosir elektronik\nSudah bayar\nKirim brosur",
	       "Grosir elektronik\nSudah bayar\nKirim brosur");
	MERGE3("a\n", "a\nX\nY", "a\nX\nZ", "a\nX\nY\nZ");
	MERGE3("a", "a\nX\nY", "a\nX\nZ", "a\nX\nY\nZ");
	/* Both insert before the base's last line, which stays last: it ends
	 * with a line end as the side that changed that, if one did. */
	MERGE3("a\nb", "a\nX\nb", "Y\na\nb", "Y\na\nX\nb");
	MERGE3("a\nb", "a\nX\nb\n", "Y\na\nb", "Y\na\nX\nb\n");
	MERGE3("a\nb\n", "a\nX\nb\n", "Y\na\nb", "Y\na\nX\nb");
	MERGE3("a\nb\n", "a\nX\nb\n", "Y\na\nb\n", "Y\na\nX\nb\n");
	MERGE3("a\nb", "a\nX\nb", "Y\na\nb\n", "Y\na\nX\nb\n");
	MERGE3("a\nb\n", "a\nX\nb", "Y\na\nb\n", "Y\na\nX\nb");
	MERGE3("a\r\nb", "a\r\nX\r\nb", "Y\r\na\r\nb\r\n", "Y\r\na\r\nX\r\nb\r\n");
	/* Different lines at one place: ours first; the end as its writer's. */
	MERGE3("a\n", "a\nc\n", "a\nd", "a\nc\nd");
	MERGE3("a\n", "a\nc", "a\nd\n", "a\nc\nd\n");
	/* CRLF notes: appends merge, and the merged text keeps CRLF. */
	MERGE3("Grosir\r\nBuka jam 8", "Grosir\r\nBuka jam 8\r\nAni: sudah bayar",
	       "Grosir\r\nBuka jam 8\r\nBudi: kirim brosur",
	       "Grosir\r\nBuka jam 8\r\nAni: sudah bayar\r\nBudi: kirim brosur");
	MERGE3("a\r\nb\r\n", "a\r\nb\r\nc\r\n", "a\r\nx\r\nb\r\n", "a\r\nx\r\nb\r\nc\r\n");
	/* CRLF, an edit and an append apart: xdiff merges them. */
	MERGE3("a\r\nb\r\nc", "A\r\nb\r\nc", "a\r\nb\r\nc\r\nd", "A\r\nb\r\nc\r\nd");
	/* A deletion on one side still conflicts with an insertion near it. */
	MERGE3("a\nb\nc", "a\nc", "a\nb\nx\nc", NULL);
}

/* Lines of s (split at '\n'), in *l; returns the count. */
static int split_lines(char *s, char **l, int max)
{
	int n = 0;
	char *p = s;

	while (n < max) {
		char *nl = strchr(p, '\n');
		l[n++] = p;
		if (!nl)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	return n;
}

static int is_subsequence(char **small, int sn, char **big, int bn)
{
	int i, j = 0;

	for (i = 0; i < bn && j < sn; i++)
		j += strcmp(small[j], big[i]) == 0;
	return j == sn;
}

/* Random insertions on both sides (base lines from a small alphabet, the
 * empty line among them, so that inserted lines often equal base lines):
 * always clean, every line of each side kept in order, and no more lines
 * than the two sides' together. Texts are lines joined by '\n'. */
static unsigned int rnd_next(unsigned int *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return *seed >> 16;
}

static void join_lines(char *dst, const char **l, int n)
{
	int i;

	dst[0] = '\0';
	for (i = 0; i < n; i++) {
		if (i)
			strcat(dst, "\n");
		strcat(dst, l[i]);
	}
}

static void test_text_inserts_random(void)
{
	static const char *alpha[] = { "a", "b", "c", "" };
	static const char *ins[] = { "a", "x", "y", "z", "" };
	unsigned int seed = 12345;
	int it, bad = 0;

	for (it = 0; it < 5000 && bad < 5; it++) {
		const char *bl[8], *sl[2][32];
		char base[128], side[2][512], *out, *ml[128];
		int bn = 1 + (int)(rnd_next(&seed) % 5), sn[2], i, s, mn;

		for (i = 0; i < bn; i++)
			bl[i] = alpha[rnd_next(&seed) % 4];
		if (bn == 1 && !bl[0][0])
			bl[0] = "a";    /* one empty line is the empty text: no base */
		join_lines(base, bl, bn);
		for (s = 0; s < 2; s++) {
			sn[s] = 0;
			for (i = 0; i <= bn; i++) {
				int k = rnd_next(&seed) % 3 == 0 ? (int)(rnd_next(&seed) % 3) : 0;
				while (k-- > 0)
					sl[s][sn[s]++] = ins[rnd_next(&seed) % 5];
				if (i < bn)
					sl[s][sn[s]++] = bl[i];
			}
			join_lines(side[s], sl[s], sn[s]);
		}
		out = merge3(base, side[0], side[1]);
		if (!out) {
			fprintf(stderr, "  insertions conflicted: '%s' '%s' '%s'\n", base, side[0],
				side[1]);
			bad++;
			continue;
		}
		/* A last empty line is the text's line end, which follows the
		 * side that wrote the last line: compare the lines before it. */
		mn = split_lines(out, ml, 128);
		mn -= mn > 0 && !ml[mn - 1][0];
		for (s = 0; s < 2; s++)
			sn[s] -= sn[s] > 0 && !sl[s][sn[s] - 1][0];
		bn -= !bl[bn - 1][0];
		if (!is_subsequence((char **)sl[0], sn[0], ml, mn) ||
		    !is_subsequence((char **)sl[1], sn[1], ml, mn) || mn > sn[0] + sn[1] - bn) {
			fprintf(stderr, "  insertions merged wrong: '%s' '%s' '%s'\n", base, side[0],
				side[1]);
			bad++;
		}
		free(out);
	}
	CHECK_EQ_INT(bad, 0);
}

static void test_text_errors(void)
{
	char *out = NULL;
	int clean = 0;

	CHECK_EQ_INT(rl_merge_text("a", "a", "a", NULL, &out), RL_ERROR);
	CHECK_EQ_INT(rl_error_code(), RL_ERROR);
	CHECK(strstr(rl_error_message(), "rl_merge_text") != NULL);
	CHECK_EQ_INT(rl_merge_text("a", "a", "a", &clean, NULL), RL_ERROR);
	/* NULL ours/theirs read as "". */
	CHECK_EQ_INT(rl_merge_text("a", NULL, NULL, &clean, &out), RL_OK);
	CHECK_EQ_INT(clean, 1);
	CHECK_EQ_STR(out, "");
	free(out);
}

static void test_apply(void)
{
	struct rl_merge_result r;
	struct rl_field_state cur = state(v_int(5), 12, 1000, "dev-a");
	struct rl_incoming in = incoming(v_int(6), 12, 500, "dev-b");

	/* Base is current: fast-forward, even with an older HLC. */
	CHECK_EQ_INT(decide(&cur, &in, 0, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_APPLY);
	CHECK(r.merged == NULL);
	CHECK_EQ_INT(r.incoming_wins, 0);

	/* Fast-forward of text does not merge, whatever the base value. */
	cur = state(v_text("a\nb"), 3, 1000, "dev-a");
	in = incoming(v_text("a\nB"), 3, 2000, "dev-b");
	{
		struct rl_value base = v_text("zzz");
		CHECK_EQ_INT(decide(&cur, &in, 1, &base, &r), RL_OK);
	}
	CHECK_EQ_INT(r.outcome, RL_MERGE_APPLY);
	CHECK(r.merged == NULL);

	/* APPLY is checked before SAME: base current and equal value. */
	cur = state(v_int(5), 12, 1000, "dev-a");
	in = incoming(v_int(5), 12, 2000, "dev-b");
	CHECK_EQ_INT(decide(&cur, &in, 0, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_APPLY);

	/* A field the hub never had: base none. */
	memset(&cur, 0, sizeof(cur));
	in = incoming(v_text("baru"), 0, 10, "dev-b");
	CHECK_EQ_INT(decide(&cur, &in, 1, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_APPLY);
	CHECK(r.merged == NULL);
	CHECK_EQ_INT(r.incoming_wins, 0);

	/* Never had it, yet the device claims a base: still APPLY. */
	in = incoming(v_int(1), 9, 10, "dev-b");
	CHECK_EQ_INT(decide(&cur, &in, 0, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_APPLY);
	{
		struct rl_value base = v_text("x");
		in = incoming(v_text("y"), 9, 10, "dev-b");
		CHECK_EQ_INT(decide(&cur, &in, 1, &base, &r), RL_OK);
		CHECK_EQ_INT(r.outcome, RL_MERGE_APPLY);
		CHECK(r.merged == NULL);
	}
}

static void test_same(void)
{
	struct rl_merge_result r;
	struct rl_field_state cur = state(v_int(5), 12, 1000, "dev-a");
	struct rl_incoming in = incoming(v_int(5), 4, 2000, "dev-b");

	CHECK_EQ_INT(decide(&cur, &in, 0, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_SAME);
	CHECK(r.merged == NULL);
	CHECK_EQ_INT(r.incoming_wins, 0);

	cur = state(v_null(), 12, 1000, "dev-a");
	in = incoming(v_null(), 4, 2000, "dev-b");
	CHECK_EQ_INT(decide(&cur, &in, 0, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_SAME);

	cur = state(v_text("Catatan sama"), 12, 1000, "dev-a");
	in = incoming(v_text("Catatan sama"), 4, 2000, "dev-b");
	{
		struct rl_value base = v_text("Catatan lama");
		CHECK_EQ_INT(decide(&cur, &in, 1, &base, &r), RL_OK);
	}
	CHECK_EQ_INT(r.outcome, RL_MERGE_SAME);
	CHECK(r.merged == NULL);
}

static void test_conflict_winner(void)
{
	struct rl_merge_result r;
	struct rl_field_state cur = state(v_int(1), 12, 1000, "dev-b");
	struct rl_incoming in = incoming(v_int(2), 4, 2000, "dev-a");

	/* Later HLC wins, whatever the device ids. */
	CHECK_EQ_INT(decide(&cur, &in, 0, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_CONFLICT);
	CHECK(r.merged == NULL);
	CHECK_EQ_INT(r.incoming_wins, 1);

	in.hlc = 999;
	cur.device = "dev-a";
	in.device = "dev-z";
	CHECK_EQ_INT(decide(&cur, &in, 0, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_CONFLICT);
	CHECK_EQ_INT(r.incoming_wins, 0);

	/* Tie on HLC: the larger device id wins. */
	in.hlc = 1000;
	cur.device = "dev-a";
	in.device = "dev-b";
	CHECK_EQ_INT(decide(&cur, &in, 0, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_CONFLICT);
	CHECK_EQ_INT(r.incoming_wins, 1);

	cur.device = "dev-b";
	in.device = "dev-a";
	CHECK_EQ_INT(decide(&cur, &in, 0, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.incoming_wins, 0);

	/* Full tie: the current value stays. */
	in.device = "dev-b";
	CHECK_EQ_INT(decide(&cur, &in, 0, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_CONFLICT);
	CHECK_EQ_INT(r.incoming_wins, 0);

	/* NULL device compares as "". */
	cur.device = NULL;
	in.device = "x";
	CHECK_EQ_INT(decide(&cur, &in, 0, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.incoming_wins, 1);
	cur.device = "x";
	in.device = NULL;
	CHECK_EQ_INT(decide(&cur, &in, 0, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.incoming_wins, 0);
	cur.device = "";
	in.device = NULL;
	CHECK_EQ_INT(decide(&cur, &in, 0, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.incoming_wins, 0);

	/* Type changes are conflicts too: 1 vs 1.0, "" vs NULL. */
	cur = state(v_int(1), 12, 1000, "dev-a");
	in = incoming(v_real(1.0), 4, 2000, "dev-b");
	CHECK_EQ_INT(decide(&cur, &in, 0, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_CONFLICT);
	CHECK_EQ_INT(r.incoming_wins, 1);
	cur = state(v_text(""), 12, 3000, "dev-a");
	in = incoming(v_null(), 4, 2000, "dev-b");
	CHECK_EQ_INT(decide(&cur, &in, 1, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_CONFLICT);
	CHECK_EQ_INT(r.incoming_wins, 0);
}

static void test_field_text(void)
{
	struct rl_merge_result r;
	struct rl_value base = v_text("Telepon pagi.\nKirim brosur.\nFollow up Senin.");
	struct rl_field_state cur = state(
		v_text("Telepon pagi.\nKirim brosur.\nFollow up Senin.\nSudah bayar DP."),
		20, 5000, "dev-hub");
	struct rl_incoming in = incoming(
		v_text("Telepon siang.\nKirim brosur.\nFollow up Senin."),
		11, 4000, "dev-rep");

	/* Clean: append on the hub side, edit of the first line incoming. */
	CHECK_EQ_INT(decide(&cur, &in, 1, &base, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_MERGED);
	CHECK_EQ_STR(r.merged,
		     "Telepon siang.\nKirim brosur.\nFollow up Senin.\nSudah bayar DP.");
	CHECK_EQ_INT(r.incoming_wins, 0);
	free(r.merged);

	/* The same texts when the field is not free text: conflict. */
	CHECK_EQ_INT(decide(&cur, &in, 0, &base, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_CONFLICT);
	CHECK(r.merged == NULL);
	CHECK_EQ_INT(r.incoming_wins, 0);

	/* ...or when the base value is unknown (NULL pointer). */
	CHECK_EQ_INT(decide(&cur, &in, 1, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_CONFLICT);
	CHECK(r.merged == NULL);

	/* ...or when the base was not text or NULL. */
	{
		struct rl_value ibase = v_int(3);
		CHECK_EQ_INT(decide(&cur, &in, 1, &ibase, &r), RL_OK);
		CHECK_EQ_INT(r.outcome, RL_MERGE_CONFLICT);
	}

	/* Same line edited differently: conflict, later HLC (hub) wins. */
	in = incoming(v_text("Telepon sore.\nKirim brosur.\nFollow up Senin."),
		      11, 4000, "dev-rep");
	cur = state(v_text("Telepon malam.\nKirim brosur.\nFollow up Senin."),
		    20, 5000, "dev-hub");
	CHECK_EQ_INT(decide(&cur, &in, 1, &base, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_CONFLICT);
	CHECK(r.merged == NULL);
	CHECK_EQ_INT(r.incoming_wins, 0);
	in.hlc = 6000;
	CHECK_EQ_INT(decide(&cur, &in, 1, &base, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_CONFLICT);
	CHECK_EQ_INT(r.incoming_wins, 1);

	/* Both append a different line at the end: merged, the hub's line first. */
	cur = state(v_text("Telepon pagi.\nKirim brosur.\nFollow up Senin.\nA"),
		    20, 5000, "dev-hub");
	in = incoming(v_text("Telepon pagi.\nKirim brosur.\nFollow up Senin.\nB"),
		      11, 5000, "dev-rep");
	CHECK_EQ_INT(decide(&cur, &in, 1, &base, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_MERGED);
	CHECK_EQ_STR(r.merged, "Telepon pagi.\nKirim brosur.\nFollow up Senin.\nA\nB");
	free(r.merged);
	/* Both rewrote the last line: a conflict, the tie broken by device id. */
	cur = state(v_text("Telepon pagi.\nKirim brosur.\nFollow up Selasa."), 20, 5000, "dev-hub");
	in = incoming(v_text("Telepon pagi.\nKirim brosur.\nFollow up Rabu."), 11, 5000, "dev-rep");
	CHECK_EQ_INT(decide(&cur, &in, 1, &base, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_CONFLICT);
	CHECK_EQ_INT(r.incoming_wins, 1);     /* tie on HLC, "dev-rep" > "dev-hub" */

	/* Merge result equals the current text (the incoming side did not
	 * change the base): SAME, nothing allocated. */
	cur = state(v_text("a\nb\nc"), 20, 5000, "dev-hub");
	in = incoming(v_text("a\nb"), 11, 9000, "dev-rep");
	{
		struct rl_value b2 = v_text("a\nb");
		CHECK_EQ_INT(decide(&cur, &in, 1, &b2, &r), RL_OK);
	}
	CHECK_EQ_INT(r.outcome, RL_MERGE_SAME);
	CHECK(r.merged == NULL);

	/* Merge result equals the incoming text (hub's version moved on but
	 * its text is the base's): MERGED, with the incoming text. */
	cur = state(v_text("a\nb"), 20, 5000, "dev-hub");
	in = incoming(v_text("a\nb\nc"), 11, 1, "dev-rep");
	{
		struct rl_value b2 = v_text("a\nb");
		CHECK_EQ_INT(decide(&cur, &in, 1, &b2, &r), RL_OK);
	}
	CHECK_EQ_INT(r.outcome, RL_MERGE_MERGED);
	CHECK_EQ_STR(r.merged, "a\nb\nc");
	free(r.merged);

	/* NULL base (field was empty): two different new notes conflict. */
	{
		struct rl_value nb = v_null();
		cur = state(v_text("Catatan dari kantor"), 20, 5000, "dev-hub");
		in = incoming(v_text("Catatan dari lapangan"), 11, 6000, "dev-rep");
		CHECK_EQ_INT(decide(&cur, &in, 1, &nb, &r), RL_OK);
		CHECK_EQ_INT(r.outcome, RL_MERGE_CONFLICT);
		CHECK_EQ_INT(r.incoming_wins, 1);

		/* NULL base, the hub still empty text, device wrote a note. */
		cur = state(v_text(""), 20, 5000, "dev-hub");
		CHECK_EQ_INT(decide(&cur, &in, 1, &nb, &r), RL_OK);
		CHECK_EQ_INT(r.outcome, RL_MERGE_MERGED);
		CHECK_EQ_STR(r.merged, "Catatan dari lapangan");
		free(r.merged);
	}

	/* Current NULL (cleared on the hub) against an edit: no text merge. */
	cur = state(v_null(), 20, 5000, "dev-hub");
	in = incoming(v_text("a\nB"), 11, 6000, "dev-rep");
	{
		struct rl_value b2 = v_text("a\nb");
		CHECK_EQ_INT(decide(&cur, &in, 1, &b2, &r), RL_OK);
	}
	CHECK_EQ_INT(r.outcome, RL_MERGE_CONFLICT);
	CHECK_EQ_INT(r.incoming_wins, 1);

	/* UTF-8 notes without trailing newlines, through the field rule. */
	base = v_text("Bu Ratna, pemilik Toko Sinar Jaya.\nMinta katalog 2024.");
	cur = state(v_text("Bu Ratna, pemilik Toko Sinar Jaya.\nMinta katalog 2024.\n"
			   "Katalog dikirim lewat WhatsApp ✓"), 30, 7000, "dev-hub");
	in = incoming(v_text("Bu Ratna (Ibu Ratna Dewi), pemilik Toko Sinar Jaya.\n"
			     "Minta katalog 2024."), 25, 6500, "dev-rep");
	CHECK_EQ_INT(decide(&cur, &in, 1, &base, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_MERGED);
	CHECK_EQ_STR(r.merged, "Bu Ratna (Ibu Ratna Dewi), pemilik Toko Sinar Jaya.\n"
			       "Minta katalog 2024.\nKatalog dikirim lewat WhatsApp ✓");
	free(r.merged);
}

static void test_field_errors(void)
{
	struct rl_merge_result r;
	struct rl_field_state cur = state(v_int(1), 1, 1, "a");
	struct rl_incoming in = incoming(v_int(2), 1, 1, "b");

	CHECK_EQ_INT(rl_merge_field(NULL, &in, 0, NULL, &r), RL_ERROR);
	CHECK_EQ_INT(rl_merge_field(&cur, NULL, 0, NULL, &r), RL_ERROR);
	CHECK_EQ_INT(rl_merge_field(&cur, &in, 0, NULL, NULL), RL_ERROR);
}

static void test_equality(void)
{
	struct rl_value vals[10];
	/* want[i][j]: equal? Only same type and value; NaN never. */
	static const int want[10][10] = {
		/*        N  1  2  1. -0 0. NaN "1" "" "1.0" */
		/* N   */ {1, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		/* 1   */ {0, 1, 0, 0, 0, 0, 0, 0, 0, 0},
		/* 2   */ {0, 0, 1, 0, 0, 0, 0, 0, 0, 0},
		/* 1.0 */ {0, 0, 0, 1, 0, 0, 0, 0, 0, 0},
		/* -0. */ {0, 0, 0, 0, 1, 1, 0, 0, 0, 0},
		/* 0.0 */ {0, 0, 0, 0, 1, 1, 0, 0, 0, 0},
		/* NaN */ {0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		/* "1" */ {0, 0, 0, 0, 0, 0, 0, 1, 0, 0},
		/* ""  */ {0, 0, 0, 0, 0, 0, 0, 0, 1, 0},
		/*"1.0"*/ {0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
	};
	int i, j;

	vals[0] = v_null();
	vals[1] = v_int(1);
	vals[2] = v_int(2);
	vals[3] = v_real(1.0);
	vals[4] = v_real(-0.0);
	vals[5] = v_real(0.0);
	vals[6] = v_real(NAN);
	vals[7] = v_text("1");
	vals[8] = v_text("");
	vals[9] = v_text("1.0");
	for (i = 0; i < 10; i++) {
		for (j = 0; j < 10; j++) {
			struct rl_value b = vals[j];   /* a copy: never the same pointer */
			int got = rl_value_equal(&vals[i], &b);

			CHECK_EQ_INT(got, want[i][j]);
			if (got != want[i][j])
				fprintf(stderr, "  (pair %d, %d)\n", i, j);
		}
	}
	/* NaN is unequal even to itself through the same pointer. */
	CHECK_EQ_INT(rl_value_equal(&vals[6], &vals[6]), 0);

	/* Only the field of the type counts: stray i/d/s are ignored. */
	{
		struct rl_value a = { RL_V_INT, 7, 1.5, "x" };
		struct rl_value b = { RL_V_INT, 7, 2.5, "y" };
		struct rl_value n1 = { RL_V_NULL, 1, 0.0, "p" };
		struct rl_value n2 = { RL_V_NULL, 2, 0.0, NULL };
		CHECK_EQ_INT(rl_value_equal(&a, &b), 1);
		CHECK_EQ_INT(rl_value_equal(&n1, &n2), 1);
	}
	/* Large integers are compared exactly, not through a double. */
	{
		struct rl_value a = v_int(INT64_C(9007199254740993));
		struct rl_value b = v_int(INT64_C(9007199254740992));
		CHECK_EQ_INT(rl_value_equal(&a, &b), 0);
	}
	/* UTF-8 text compares byte for byte. */
	{
		struct rl_value a = v_text("kué");
		struct rl_value b = v_text("kue");
		struct rl_value c = v_text("kué");
		CHECK_EQ_INT(rl_value_equal(&a, &b), 0);
		CHECK_EQ_INT(rl_value_equal(&a, &c), 1);
	}
	/* NULL pointers and a TEXT value with no string (read as ""). */
	{
		struct rl_value t0 = v_text(NULL);
		CHECK_EQ_INT(rl_value_equal(NULL, NULL), 1);
		CHECK_EQ_INT(rl_value_equal(&vals[0], NULL), 0);
		CHECK_EQ_INT(rl_value_equal(&t0, &vals[8]), 1);
		CHECK_EQ_INT(rl_value_equal(&t0, &vals[0]), 0);
	}
}

/* Several threads merging at once: libgit2 is initialised exactly once
 * (pthread_once) and every merge still gives the same answer. */
#define THREADS 4
#define ROUNDS 50

static void *merge_worker(void *arg)
{
	int *bad = arg;
	int k;

	for (k = 0; k < ROUNDS; k++) {
		char *out = NULL;
		int clean = 0;

		if (rl_merge_text("a\nb", "a\nb\nc", "x\nb", &clean, &out) != RL_OK ||
		    !clean || !out || strcmp(out, "x\nb\nc") != 0)
			(*bad)++;
		free(out);
	}
	return NULL;
}

static void test_threads(void)
{
	pthread_t th[THREADS];
	int bad[THREADS] = { 0 };
	int started = 0, i;

	for (i = 0; i < THREADS; i++) {
		if (pthread_create(&th[i], NULL, merge_worker, &bad[i]) != 0)
			break;
		started++;
	}
	CHECK_EQ_INT(started, THREADS);
	for (i = 0; i < started; i++) {
		CHECK_EQ_INT(pthread_join(th[i], NULL), 0);
		CHECK_EQ_INT(bad[i], 0);
	}
}

/* A deal's stage: concurrent moves never conflict, the later stamp stands
 * (the moves themselves are appended stage events). */
static void test_latest_wins(void)
{
	struct rl_merge_result r;
	struct rl_field_state cur = state(v_text("won"), 12, 1000, "dev-b");
	struct rl_incoming in = incoming(v_text("proposal"), 4, 2000, "dev-a");

	in.latest_wins = 1;
	CHECK_EQ_INT(decide(&cur, &in, 0, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_APPLY);
	CHECK_EQ_INT(r.incoming_wins, 0);
	CHECK(r.merged == NULL);

	in.hlc = 999;                   /* older than the hub's move */
	CHECK_EQ_INT(decide(&cur, &in, 0, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_SUPERSEDED);
	CHECK_EQ_INT(r.incoming_wins, 0);

	in.hlc = 1000;                  /* a tie: the larger device id, as for conflicts */
	CHECK_EQ_INT(decide(&cur, &in, 0, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_SUPERSEDED);
	in.device = "dev-c";
	CHECK_EQ_INT(decide(&cur, &in, 0, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_APPLY);

	/* The other rules come first: fast-forward and the same value. */
	in.hlc = 1;
	in.base = 12;
	CHECK_EQ_INT(decide(&cur, &in, 0, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_APPLY);
	in.base = 4;
	in.value = v_text("won");
	CHECK_EQ_INT(decide(&cur, &in, 0, NULL, &r), RL_OK);
	CHECK_EQ_INT(r.outcome, RL_MERGE_SAME);
}

int main(void)
{
	test_text_merge();
	test_text_inserts();
	test_text_inserts_random();
	test_text_errors();
	test_apply();
	test_same();
	test_conflict_winner();
	test_latest_wins();
	test_field_text();
	test_field_errors();
	test_equality();
	test_threads();
	CHECK_DONE();
}
