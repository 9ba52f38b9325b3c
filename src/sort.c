/*
 * sort.c: the radix sort that the statistics share.
 *
 * Cut points, value shares, k-means and the fits' histograms sort up to a
 * million values or rows each in a refresh, and the summaries are written
 * in the customer's order; comparison sorts spent most of those steps'
 * time.  A least-significant-digit radix sort makes eight linear passes at
 * most, and skips each byte that every key shares.  Keys are uint64: a
 * float8 maps to an integer of the same order, with -0 taken as 0.
 */
#include "segtier.h"

#include "miscadmin.h"
#include "utils/memutils.h"

#define SIGN_BIT (UINT64CONST(1) << 63)

/* An integer in the order of the float8 (which is not NaN); -0 is 0. */
static inline uint64
float8_key(float8 v)
{
	uint64		u;

	v += 0.0;
	memcpy(&u, &v, sizeof(u));
	return (u & SIGN_BIT) ? ~u : (u | SIGN_BIT);
}

static inline float8
key_float8(uint64 u)
{
	float8		v;

	u = (u & SIGN_BIT) ? (u & ~SIGN_BIT) : ~u;
	memcpy(&v, &u, sizeof(v));
	return v;
}

/*
 * Sorts n records of width uint64 words by their first word, ascending and
 * stable.
 */
void
segtier_sort_u64(uint64 *a, int64 n, int width)
{
	int64		counts[8][256];
	uint64	   *src = a,
			   *dst = NULL,
			   *tmp = NULL;

	if (n < 2)
		return;
	memset(counts, 0, sizeof(counts));
	for (int64 i = 0; i < n; i++)
	{
		uint64		k = a[i * width];

		for (int b = 0; b < 8; b++)
			counts[b][(k >> (8 * b)) & 0xFF]++;
	}
	for (int b = 0; b < 8; b++)
	{
		int64	   *c = counts[b];
		int64		sum = 0;

		if (c[(src[0] >> (8 * b)) & 0xFF] == n)
			continue;
		if (tmp == NULL)
			dst = tmp = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(uint64) * width * n);
		for (int j = 0; j < 256; j++)
		{
			int64		t = c[j];

			c[j] = sum;
			sum += t;
		}
		CHECK_FOR_INTERRUPTS();
		if (width == 1)
			for (int64 i = 0; i < n; i++)
				dst[c[(src[i] >> (8 * b)) & 0xFF]++] = src[i];
		else
			for (int64 i = 0; i < n; i++)
			{
				const uint64 *r = src + i * width;
				uint64	   *to = dst + c[(r[0] >> (8 * b)) & 0xFF]++ * width;

				for (int w = 0; w < width; w++)
					to[w] = r[w];
			}
		dst = src;
		src = (src == a) ? tmp : a;
	}
	if (src != a)
		memcpy(a, src, sizeof(uint64) * width * n);
	if (tmp != NULL)
		pfree(tmp);
}

/* Sorts n float8 (no NaN) ascending; a -0 comes out as 0. */
void
segtier_sort_float8(float8 *v, int64 n)
{
	uint64	   *u = (uint64 *) v;

	for (int64 i = 0; i < n; i++)
		u[i] = float8_key(v[i]);
	segtier_sort_u64(u, n, 1);
	for (int64 i = 0; i < n; i++)
		v[i] = key_float8(u[i]);
}

/*
 * Sorts n rows of width 8-byte words whose first nkeys words are float8 (no
 * NaN) into lexicographic order of those keys, -0 equal to 0: stable sorts
 * of (key, row) pairs by each key from the last to the first, then the rows
 * moved into that order.
 */
void
segtier_sort_rows(void *rows, int64 n, int width, int nkeys)
{
	float8	   *r = rows;
	uint64	   *pairs;
	float8	   *moved;

	if (n < 2)
		return;
	pairs = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(uint64) * 2 * n);
	for (int64 i = 0; i < n; i++)
		pairs[2 * i + 1] = i;
	for (int k = nkeys - 1; k >= 0; k--)
	{
		for (int64 i = 0; i < n; i++)
			pairs[2 * i] = float8_key(r[pairs[2 * i + 1] * width + k]);
		segtier_sort_u64(pairs, n, 2);
	}
	moved = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(float8) * width * n);
	for (int64 i = 0; i < n; i++)
		memcpy(moved + i * width, r + pairs[2 * i + 1] * width, sizeof(float8) * width);
	memcpy(r, moved, sizeof(float8) * width * n);
	pfree(moved);
	pfree(pairs);
}
