/*
 * summary.c: the purchase_summary aggregate and its state type,
 * segtier.purchase_state.
 *
 * The state keeps exact amount sums as int128 at the input's scale (no
 * numeric palloc per row) and switches for good to numeric sums stored after
 * the day array when a value does not fit.  Purchase days are a sorted int32
 * array of local day numbers (days since 2000-01-01 in the chosen zone), so
 * states from parallel workers merge into exact distinct-day counts.
 */
#include "segtier.h"

#include "access/htup_details.h"
#include "datatype/timestamp.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "pgtime.h"
#include "port/pg_bitutils.h"
#include "utils/builtins.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include <errno.h>

/* The three exact sums of a state. */
#define SUM_PURCHASES	0		/* non-negative amounts */
#define SUM_REFUNDS		1		/* negative amounts */
#define SUM_FIRST_DAY	2		/* purchases on the earliest purchase day */
#define NSUMS			3

#define PS_NUMERIC		0x0001	/* sums are numerics after days[maxdays] */
#define PS_TEXT_VERSION 1


struct PurchaseState
{
	int32		vl_len_;
	uint16		flags;			/* PS_NUMERIC; other bits zero */
	uint16		reserved;		/* zero; room for a layout change */
	int32		ndays;
	int32		maxdays;		/* allocated slots in days[] */
	TimestampTz first_purchase; /* meaningful when transactions > 0 */
	TimestampTz last_purchase;
	int64		transactions;
	int64		null_rows;
	int64		refunds;
	int64		future_rows;
	PurchaseSum sums[NSUMS];	/* zero when PS_NUMERIC */
	int32		days[FLEXIBLE_ARRAY_MEMBER];	/* strictly increasing */
};

#define STATE_HDRSZ offsetof(PurchaseState, days)


/* Per-call cache: the zone of the rows and an interval of constant offset. */
struct ZoneCache
{
	pg_tz	   *tz;
	text	   *zone;			/* the zone argument it came from, or NULL */
	pg_time_t	lo;				/* gmtoff holds for lo <= t < hi */
	pg_time_t	hi;
	long int	gmtoff;
};

static int128 pow10_table[MAX_FAST_SCALE + 1];

/* Powers of ten for rescaling; filled on first use. */
static inline int128
Pow10(int k)
{
	if (pow10_table[0] == 0)
	{
		pow10_table[0] = 1;
		for (int i = 1; i <= MAX_FAST_SCALE; i++)
			pow10_table[i] = pow10_table[i - 1] * 10;
	}
	return pow10_table[k];
}

/* Multiplies by 10^k; false on overflow. */
static inline bool
Rescale(int128 *v, int k)
{
	if (k == 0 || *v == 0)
		return true;
	if (k > MAX_FAST_SCALE)
		return false;
	return !__builtin_mul_overflow(*v, Pow10(k), v);
}

/* Adds value/10^scale to the sum at the larger scale; false on overflow. */
bool
SumAdd(PurchaseSum *acc, int128 value, int32 scale)
{
	PurchaseSum r = *acc;

	if (scale > r.scale)
	{
		if (!Rescale(&r.value, scale - r.scale))
			return false;
		r.scale = scale;
	}
	else if (!Rescale(&value, r.scale - scale))
		return false;
	if (__builtin_add_overflow(r.value, value, &r.value))
		return false;
	*acc = r;
	return true;
}

/* Decimal text of value/10^scale with exactly scale fraction digits. */
static char *
SumToCString(int128 value, int32 scale)
{
	char		buf[MAX_FAST_SCALE + 8];
	char	   *p = buf + sizeof(buf);
	uint128		u = value < 0 ? -(uint128) value : (uint128) value;
	int			ndigits = 0;

	*--p = '\0';
	while (u != 0 || ndigits <= scale)
	{
		*--p = '0' + (int) (u % 10);
		u /= 10;
		if (++ndigits == scale)
			*--p = '.';
	}
	if (value < 0)
		*--p = '-';
	return pstrdup(p);
}

/* Parses [-]digits[.digits] into an int128 at its scale; false if it won't fit. */
static bool
SumFromCString(const char *s, PurchaseSum *sum)
{
	bool		neg = (*s == '-');
	bool		seen_digit = false;
	int128		v = 0;
	int32		scale = -1;

	if (neg)
		s++;
	for (; *s; s++)
	{
		if (*s == '.' && scale < 0)
			scale = 0;
		else if (*s >= '0' && *s <= '9')
		{
			if (__builtin_mul_overflow(v, 10, &v) ||
				__builtin_add_overflow(v, *s - '0', &v))
				return false;
			if (scale >= 0 && ++scale > MAX_FAST_SCALE)
				return false;
			seen_digit = true;
		}
		else
			return false;
	}
	if (!seen_digit)
		return false;
	sum->value = neg ? -v : v;
	sum->scale = Max(scale, 0);
	sum->reserved = 0;
	return true;
}

/* The exact numeric of a fast sum. */
Numeric
SumToNumeric(const PurchaseSum *sum)
{
	if (sum->value >= PG_INT64_MIN && sum->value <= PG_INT64_MAX)
		return int64_div_fast_to_numeric((int64) sum->value, sum->scale);
	return DatumGetNumeric(DirectFunctionCall3(numeric_in,
											   CStringGetDatum(SumToCString(sum->value, sum->scale)),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
}

/* A numeric datum and its first header word, copied only when toasted. */
static struct varlena *
NumericInPlace(Datum d, uint16 *hdr)
{
	struct varlena *v = (struct varlena *) DatumGetPointer(d);

	if (VARATT_IS_EXTERNAL(v) || VARATT_IS_COMPRESSED(v))
		v = pg_detoast_datum(v);
	memcpy(hdr, VARDATA_ANY(v), sizeof(uint16));
	return v;
}

#define NUMERIC_HDR_SPECIAL(hdr) (((hdr) & 0xC000) == 0xC000)	/* NaN, +-Infinity */

/*
 * Reads a numeric amount in place, without detoasting a short header.  The
 * layout is PostgreSQL's on-disk numeric format (src/backend/utils/adt/
 * numeric.c), which pg_upgrade keeps fixed: a uint16 header whose top two
 * bits say positive (00), negative (01), short (10) or special (11); the
 * short form packs sign 0x2000, display scale 0x1F80 >> 7 and a 7-bit signed
 * weight; the long form is sign and scale in 16 bits, then an int16 weight;
 * then base-10000 digits, most significant first, of weight "weight".
 * False for NaN and the infinities (not fast, not negative).
 */
bool
AmountDecode(Datum d, Amount *a)
{
	uint16		hdr;
	struct varlena *v = NumericInPlace(d, &hdr);
	const char *p = VARDATA_ANY(v);
	int			len = VARSIZE_ANY_EXHDR(v);
	int			weight;
	int			dscale;
	int			ndigits;
	int			exp10;
	int128		acc = 0;

	a->datum = PointerGetDatum(v);
	a->negative = false;
	a->fast = false;
	if (NUMERIC_HDR_SPECIAL(hdr))
		return false;
	if ((hdr & 0xC000) == 0x8000)
	{
		a->negative = (hdr & 0x2000) != 0;
		dscale = (hdr & 0x1F80) >> 7;
		weight = (hdr & 0x0040) ? (int) (hdr & 0x003F) - 64 : (int) (hdr & 0x003F);
		p += sizeof(uint16);
		len -= sizeof(uint16);
	}
	else
	{
		int16		w;

		a->negative = (hdr & 0xC000) == 0x4000;
		dscale = hdr & 0x3FFF;
		memcpy(&w, p + sizeof(uint16), sizeof(int16));
		weight = w;
		p += 2 * sizeof(uint16);
		len -= 2 * sizeof(uint16);
	}
	ndigits = len / (int) sizeof(int16);
	a->negative = a->negative && ndigits > 0;
	if (dscale > MAX_FAST_SCALE)
		return true;

	if (ndigits <= 4)
	{
		/* at most 16 decimal digits: int64 arithmetic */
		int64		small = 0;

		for (int i = 0; i < ndigits; i++)
		{
			uint16		digit;

			memcpy(&digit, p + i * sizeof(int16), sizeof(uint16));
			small = small * 10000 + digit;
		}
		acc = small;
	}
	else
	{
		for (int i = 0; i < ndigits; i++)
		{
			uint16		digit;

			memcpy(&digit, p + i * sizeof(int16), sizeof(uint16));
			if (__builtin_mul_overflow(acc, 10000, &acc) ||
				__builtin_add_overflow(acc, digit, &acc))
				return true;
		}
	}

	/* acc * 10000^(weight - ndigits + 1) * 10^dscale is the scaled integer */
	exp10 = 4 * (weight - ndigits + 1) + dscale;
	if (ndigits == 0)
		acc = 0;
	else if (exp10 < 0)
	{
		/* the last digit group has -exp10 (at most 3) trailing zeros */
		if (exp10 < -3)
			return true;
		if (acc <= PG_INT64_MAX)
			acc = (int64) acc / (int64) Pow10(-exp10);
		else
			acc /= Pow10(-exp10);
	}
	else if (!Rescale(&acc, exp10))
		return true;

	a->value = a->negative ? -acc : acc;
	a->scale = dscale;
	a->fast = true;
	return true;
}

/* AmountDecode, with NaN and infinity an error (22023). */
void
AmountRead(Datum d, Amount *a)
{
	uint16		hdr;

	if (AmountDecode(d, a))
		return;
	/* a->datum may keep a short varlena header: not a Numeric to test */
	(void) NumericInPlace(a->datum, &hdr);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("purchase amount is %s", hdr == 0xC000 ? "NaN" : "infinite"),
			 errdetail("Amounts must be finite numbers; fix or filter the row before aggregating.")));
}

/*
 * numeric to float8 as numeric_float8 does (correctly rounded), without its
 * detour through text when the value is an integer below 2^53 over 10^scale
 * with scale <= 22: both are exact doubles, so their IEEE quotient is the
 * correctly rounded result too.
 */
float8
segtier_numeric_float8(Datum n)
{
	static const float8 pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
	uint16		hdr;
	struct varlena *v = NumericInPlace(n, &hdr);
	Amount		a;

	if (!NUMERIC_HDR_SPECIAL(hdr))
	{
		AmountRead(PointerGetDatum(v), &a);
		if (a.fast && a.scale < lengthof(pow10) &&
			a.value < ((int128) 1 << 53) && a.value > -((int128) 1 << 53))
			return (float8) (int64) a.value / pow10[a.scale];
	}
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8, n));
}

/* segtier._float8(numeric): the numeric -> float8 cast, through the above. */
PG_FUNCTION_INFO_V1(numeric_float8_fast);
Datum
numeric_float8_fast(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(segtier_numeric_float8(PG_GETARG_DATUM(0)));
}

/* Where the numeric sums of a PS_NUMERIC state start. */
static inline char *
StateTail(const PurchaseState *st)
{
	return (char *) &st->days[st->maxdays];
}

/* One sum of a state as a numeric (new for fast states, in place otherwise). */
static Numeric
StateSum(const PurchaseState *st, int which)
{
	char	   *p;

	if (!(st->flags & PS_NUMERIC))
		return SumToNumeric(&st->sums[which]);
	p = StateTail(st);
	for (int i = 0; i < which; i++)
		p += INTALIGN(VARSIZE(p));
	return (Numeric) p;
}

/* A copy of st with room for maxdays days; nums, if given, become numeric sums. */
static PurchaseState *
StateRebuild(const PurchaseState *st, int maxdays, Numeric *nums)
{
	Numeric		keep[NSUMS];
	Size		size = STATE_HDRSZ + (Size) maxdays * sizeof(int32);
	PurchaseState *r;
	char	   *p;

	Assert(maxdays >= st->ndays);
	if (nums == NULL && (st->flags & PS_NUMERIC))
	{
		for (int i = 0; i < NSUMS; i++)
			keep[i] = StateSum(st, i);
		nums = keep;
	}
	if (nums != NULL)
		for (int i = 0; i < NSUMS; i++)
			size += INTALIGN(VARSIZE(nums[i]));

	r = palloc0(size);
	memcpy(r, st, STATE_HDRSZ);
	memcpy(r->days, st->days, st->ndays * sizeof(int32));
	SET_VARSIZE(r, size);
	r->maxdays = maxdays;
	if (nums != NULL)
	{
		r->flags |= PS_NUMERIC;
		memset(r->sums, 0, sizeof(r->sums));
		p = StateTail(r);
		for (int i = 0; i < NSUMS; i++)
		{
			memcpy(p, nums[i], VARSIZE(nums[i]));
			p += INTALIGN(VARSIZE(nums[i]));
		}
	}
	return r;
}

/*
 * Day slots for at least ndays that fill the allocator's power-of-two chunk
 * (after the header of STATE_HDRSZ bytes, 30 days in 256 bytes), so most
 * customers' states are never copied to grow (each growth of an aggregate's
 * state is a new chunk and a second copy into the aggregate's context).
 */
static int
StateCapacity(int ndays)
{
	Size		want = STATE_HDRSZ + (Size) Max(ndays, 1) * sizeof(int32);

	return (int) ((pg_nextpower2_size_t(want) - STATE_HDRSZ) / sizeof(int32));
}

/* An empty state, in the current context. */
PurchaseState *
segtier_purchase_new(void)
{
	int			maxdays = StateCapacity(1);
	PurchaseState *st = palloc0(STATE_HDRSZ + maxdays * sizeof(int32));

	SET_VARSIZE(st, STATE_HDRSZ + maxdays * sizeof(int32));
	st->maxdays = maxdays;
	return st;
}

/* The state argument n; writable (copied unless we own it) when for_update. */
static PurchaseState *
StateArg(FunctionCallInfo fcinfo, int n, bool for_update)
{
	Datum		d = PG_GETARG_DATUM(n);

	if (for_update && !AggCheckCallContext(fcinfo, NULL))
		return (PurchaseState *) PG_DETOAST_DATUM_COPY(d);
	return (PurchaseState *) PG_DETOAST_DATUM(d);
}

/* Adds (or with replace, sets) one sum, going numeric when int128 won't do. */
static PurchaseState *
StateAddAmount(PurchaseState *st, int which, bool replace, Amount *a)
{
	Numeric		nums[NSUMS];
	Numeric		x;

	if (!(st->flags & PS_NUMERIC) && a->fast)
	{
		if (replace)
		{
			st->sums[which].value = a->value;
			st->sums[which].scale = a->scale;
			return st;
		}
		if (SumAdd(&st->sums[which], a->value, a->scale))
			return st;
	}
	for (int i = 0; i < NSUMS; i++)
		nums[i] = StateSum(st, i);
	x = DatumGetNumeric(a->datum);
	nums[which] = replace ? x : numeric_add_opt_error(nums[which], x, NULL);
	return StateRebuild(st, st->maxdays, nums);
}

/* Inserts a day into the sorted set; rows in time order only append. */
static PurchaseState *
StateAddDay(PurchaseState *st, int32 day)
{
	int			n = st->ndays;
	int			pos;

	if (n > 0 && (day == st->days[n - 1] || day == st->days[0]))
		return st;
	if (n == 0 || day > st->days[n - 1])
		pos = n;
	else
	{
		int			lo = 0,
					hi = n - 1;

		while (lo < hi)
		{
			int			mid = lo + (hi - lo) / 2;

			if (st->days[mid] < day)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (st->days[lo] == day)
			return st;
		pos = lo;
	}
	if (n == st->maxdays)
		st = StateRebuild(st, StateCapacity(2 * n), NULL);
	memmove(&st->days[pos + 1], &st->days[pos], (n - pos) * sizeof(int32));
	st->days[pos] = day;
	st->ndays++;
	return st;
}

/* Points zc at the named zone (an IANA name, else 22023); cxt keeps the name. */
static void
ZoneSet(ZoneCache *zc, MemoryContext cxt, text *zone)
{
	char	   *name;
	pg_tz	   *tz;

	if (zc->zone != NULL &&
		VARSIZE_ANY_EXHDR(zone) == VARSIZE_ANY_EXHDR(zc->zone) &&
		memcmp(VARDATA_ANY(zone), VARDATA_ANY(zc->zone), VARSIZE_ANY_EXHDR(zone)) == 0)
		return;
	name = text_to_cstring(zone);
	tz = pg_tzset(name);
	if (tz == NULL || !pg_tz_acceptable(tz))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone \"%s\" not recognized", name),
				 errdetail("The time zone must be a name from the IANA database (pg_timezone_names), such as 'America/New_York'.")));
	if (zc->zone != NULL)
		pfree(zc->zone);
	zc->zone = (text *) MemoryContextAlloc(cxt, VARSIZE_ANY(zone));
	memcpy(zc->zone, zone, VARSIZE_ANY(zone));
	zc->tz = tz;
	zc->lo = 1;					/* empty interval */
	zc->hi = 0;
	pfree(name);
}

/* A cache of the named zone's offsets, in cxt (the aggregation pass's). */
ZoneCache *
segtier_zone_cache(MemoryContext cxt, text *zone)
{
	ZoneCache  *zc = MemoryContextAllocZero(cxt, sizeof(ZoneCache));

	ZoneSet(zc, cxt, zone);
	return zc;
}

/* Resolves the time zone argument (or the session's), caching the lookup. */
static ZoneCache *
ZoneGet(FunctionCallInfo fcinfo)
{
	ZoneCache  *zc = (ZoneCache *) fcinfo->flinfo->fn_extra;

	if (zc == NULL)
	{
		zc = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(ZoneCache));
		zc->lo = 1;				/* empty interval */
		fcinfo->flinfo->fn_extra = zc;
	}
	if (PG_NARGS() < 4)
	{
		if (zc->tz != session_timezone)
		{
			zc->tz = session_timezone;
			zc->lo = 1;
			zc->hi = 0;
		}
		return zc;
	}
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("time zone must not be null"),
				 errdetail("Pass a time zone name such as 'Asia/Shanghai', or use the two-argument form for the session's time zone.")));
	ZoneSet(zc, fcinfo->flinfo->fn_mcxt, PG_GETARG_TEXT_PP(3));
	return zc;
}

/* Caches the zone's UTC offset from p on, if it holds up to t (else false). */
static bool
ZoneWindow(ZoneCache *zc, pg_time_t p, pg_time_t t)
{
	long int	before_gmtoff,
				after_gmtoff;
	int			before_isdst,
				after_isdst;
	pg_time_t	boundary;
	int			r;

	r = pg_next_dst_boundary(&p, &before_gmtoff, &before_isdst, &boundary,
							 &after_gmtoff, &after_isdst, zc->tz);
	if (r < 0)
		elog(ERROR, "could not find the UTC offset of time zone \"%s\"",
			 pg_get_timezone_name(zc->tz));
	if (r == 1 && boundary <= t)
	{
		if (p < t)
			return false;
		/* t is exactly on a transition: the new offset applies */
		before_gmtoff = after_gmtoff;
		boundary = t + 1;
	}
	zc->lo = p;
	zc->hi = (r == 0) ? PG_INT64_MAX : boundary;
	zc->gmtoff = before_gmtoff;
	return true;
}

/* The local calendar day of ts (days since 2000-01-01) in the cached zone. */
static int32
ZoneDay(ZoneCache *zc, TimestampTz ts)
{
	pg_time_t	t = ts / USECS_PER_SEC - (ts % USECS_PER_SEC < 0);
	int64		local;

	t += (pg_time_t) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
	/* start the window a year early, so rows going back in time hit it too */
	if ((t < zc->lo || t >= zc->hi) &&
		!ZoneWindow(zc, t - 366 * SECS_PER_DAY, t))
		(void) ZoneWindow(zc, t, t);
	local = ts + (int64) zc->gmtoff * USECS_PER_SEC;
	return (int32) (local / USECS_PER_DAY - (local % USECS_PER_DAY < 0));
}

/* A purchase: counts, first/last, the day set and the sums. */
static PurchaseState *
StateAddPurchase(PurchaseState *st, TimestampTz ts, int32 day, Amount *a)
{
	bool		new_first_day = (st->ndays == 0 || day < st->days[0]);
	bool		on_first_day = (!new_first_day && day == st->days[0]);

	if (st->transactions == 0 || ts < st->first_purchase)
		st->first_purchase = ts;
	if (st->transactions == 0 || ts > st->last_purchase)
		st->last_purchase = ts;
	st->transactions++;
	st = StateAddDay(st, day);
	st = StateAddAmount(st, SUM_PURCHASES, false, a);
	if (new_first_day || on_first_day)
		st = StateAddAmount(st, SUM_FIRST_DAY, new_first_day, a);
	return st;
}

/*
 * Adds one row (isnull: its time or amount is NULL) to st, which may move;
 * rows after *as_of, when given, only count.
 */
PurchaseState *
segtier_purchase_add(PurchaseState *st, ZoneCache *zc, bool isnull, TimestampTz ts,
					 Datum amount, const TimestampTz *as_of)
{
	Amount		a;

	if (isnull)
	{
		st->null_rows++;
		return st;
	}
	AmountRead(amount, &a);
	if (TIMESTAMP_NOT_FINITE(ts))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("purchase time is infinite"),
				 errdetail("Purchase times must be finite; filter the row with isfinite() before aggregating.")));
	if (as_of != NULL && ts > *as_of)
	{
		st->future_rows++;
		return st;
	}
	if (a.negative)
	{
		st->refunds++;
		return StateAddAmount(st, SUM_REFUNDS, false, &a);
	}
	return StateAddPurchase(st, ts, ZoneDay(zc, ts), &a);
}

/* Transition of purchase_summary(ts, amount [, zone [, as_of]]): NULL rows count. */
PG_FUNCTION_INFO_V1(purchase_state_add);
Datum
purchase_state_add(PG_FUNCTION_ARGS)
{
	ZoneCache  *zc = ZoneGet(fcinfo);
	PurchaseState *st;
	TimestampTz as_of = 0;

	if (PG_NARGS() > 4)
	{
		if (PG_ARGISNULL(4))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("as_of must not be null"),
					 errdetail("Pass the time the summary is taken at, or use the three-argument form.")));
		as_of = PG_GETARG_TIMESTAMPTZ(4);
	}
	st = PG_ARGISNULL(0) ? segtier_purchase_new() : StateArg(fcinfo, 0, true);
	st = segtier_purchase_add(st, zc, PG_ARGISNULL(1) || PG_ARGISNULL(2),
							  PG_ARGISNULL(1) ? 0 : PG_GETARG_TIMESTAMPTZ(1),
							  PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2),
							  PG_NARGS() > 4 ? &as_of : NULL);
	PG_RETURN_POINTER(st);
}

/* Merges two sorted day sets without duplicates; returns the count. */
static int
MergeDays(const PurchaseState *a, const PurchaseState *b, int32 **out)
{
	int32	   *r = palloc((a->ndays + b->ndays) * sizeof(int32) + 1);
	int			i = 0,
				j = 0,
				n = 0;

	while (i < a->ndays || j < b->ndays)
	{
		if (j >= b->ndays || (i < a->ndays && a->days[i] < b->days[j]))
			r[n++] = a->days[i++];
		else if (i >= a->ndays || b->days[j] < a->days[i])
			r[n++] = b->days[j++];
		else
		{
			r[n++] = a->days[i++];
			j++;
		}
	}
	*out = r;
	return n;
}

/* Combine function: merges state b into state a (in place when we own a). */
PG_FUNCTION_INFO_V1(purchase_state_combine);
Datum
purchase_state_combine(PG_FUNCTION_ARGS)
{
	PurchaseState *a = StateArg(fcinfo, 0, true);
	PurchaseState *b = StateArg(fcinfo, 1, false);
	int32	   *days;
	int			ndays = MergeDays(a, b, &days);

	/* which first-day sum survives: a's (-1), b's (1) or both (0) */
	int			first = (b->ndays == 0) ? -1 :
		(a->ndays == 0) ? 1 :
		(a->days[0] < b->days[0]) ? -1 :
		(a->days[0] > b->days[0]) ? 1 : 0;
	PurchaseSum sums[NSUMS];
	bool		fast = !(a->flags & PS_NUMERIC) && !(b->flags & PS_NUMERIC);

	if (fast)
	{
		memcpy(sums, a->sums, sizeof(sums));
		fast = SumAdd(&sums[SUM_PURCHASES], b->sums[SUM_PURCHASES].value, b->sums[SUM_PURCHASES].scale) &&
			SumAdd(&sums[SUM_REFUNDS], b->sums[SUM_REFUNDS].value, b->sums[SUM_REFUNDS].scale);
		if (first == 1)
			sums[SUM_FIRST_DAY] = b->sums[SUM_FIRST_DAY];
		else if (first == 0)
			fast = fast && SumAdd(&sums[SUM_FIRST_DAY], b->sums[SUM_FIRST_DAY].value,
								  b->sums[SUM_FIRST_DAY].scale);
	}
	if (fast)
	{
		if (ndays > a->maxdays)
			a = StateRebuild(a, StateCapacity(ndays), NULL);
		memcpy(a->sums, sums, sizeof(sums));
	}
	else
	{
		Numeric		nums[NSUMS];

		for (int i = 0; i < NSUMS; i++)
		{
			if (i == SUM_FIRST_DAY && first != 0)
				nums[i] = StateSum(first < 0 ? a : b, i);
			else
				nums[i] = numeric_add_opt_error(StateSum(a, i), StateSum(b, i), NULL);
		}
		a = StateRebuild(a, ndays, nums);
	}
	memcpy(a->days, days, ndays * sizeof(int32));
	a->ndays = ndays;

	if (b->transactions > 0)
	{
		if (a->transactions == 0 || b->first_purchase < a->first_purchase)
			a->first_purchase = b->first_purchase;
		if (a->transactions == 0 || b->last_purchase > a->last_purchase)
			a->last_purchase = b->last_purchase;
	}
	a->transactions += b->transactions;
	a->null_rows += b->null_rows;
	a->refunds += b->refunds;
	a->future_rows += b->future_rows;
	PG_RETURN_POINTER(a);
}

/* x + sign * y, exact; fast when both are int128 sums that do not overflow. */
static Numeric
StateSumCombined(const PurchaseState *st, int x, int y, int sign)
{
	if (!(st->flags & PS_NUMERIC))
	{
		PurchaseSum r = st->sums[x];

		if (SumAdd(&r, sign * st->sums[y].value, st->sums[y].scale))
			return SumToNumeric(&r);
	}
	if (sign > 0)
		return numeric_add_opt_error(StateSum(st, x), StateSum(st, y), NULL);
	return numeric_sub_opt_error(StateSum(st, x), StateSum(st, y), NULL);
}

/* The SUMMARY_FIELDS fields of segtier.purchase_summary of a state. */
void
segtier_purchase_values(const PurchaseState *st, Datum *values, bool *nulls)
{
	memset(nulls, 0, SUMMARY_FIELDS * sizeof(bool));
	values[0] = TimestampTzGetDatum(st->first_purchase);
	values[1] = TimestampTzGetDatum(st->last_purchase);
	nulls[0] = nulls[1] = (st->transactions == 0);
	values[2] = Int64GetDatum(st->transactions);
	values[3] = Int64GetDatum(st->ndays);
	values[4] = NumericGetDatum(StateSumCombined(st, SUM_PURCHASES, SUM_REFUNDS, 1));
	values[5] = NumericGetDatum(StateSumCombined(st, SUM_PURCHASES, SUM_FIRST_DAY, -1));
	values[6] = NumericGetDatum(StateSum(st, SUM_REFUNDS));
	values[7] = Int64GetDatum(st->null_rows);
	values[8] = Int64GetDatum(st->refunds);
	values[9] = Int64GetDatum(st->future_rows);
}

/* Final function: the segtier.purchase_summary composite of a state. */
PG_FUNCTION_INFO_V1(purchase_state_summary);
Datum
purchase_state_summary(PG_FUNCTION_ARGS)
{
	PurchaseState *st = StateArg(fcinfo, 0, false);
	TupleDesc	tupdesc = (TupleDesc) fcinfo->flinfo->fn_extra;
	Datum		values[SUMMARY_FIELDS];
	bool		nulls[SUMMARY_FIELDS];

	if (tupdesc == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "return type of purchase_state_summary must be a row type");
		tupdesc = BlessTupleDesc(tupdesc);
		MemoryContextSwitchTo(old);
		fcinfo->flinfo->fn_extra = tupdesc;
	}
	if (tupdesc->natts != SUMMARY_FIELDS)
		elog(ERROR, "segtier.purchase_summary has %d columns, expected %d",
			 tupdesc->natts, SUMMARY_FIELDS);
	segtier_purchase_values(st, values, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* Everything purchase_state_in and _recv read, before validation. */
typedef struct StateParts
{
	bool		has_purchase_times;
	TimestampTz first_purchase;
	TimestampTz last_purchase;
	int64		counts[4];		/* transactions, null_rows, refunds, future_rows */
	const char *sums[NSUMS];	/* decimal text */
	int32	   *days;
	int			ndays;
} StateParts;

/* Rejects a state whose parts contradict each other. */
static void
StateInvalid(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid purchase_state value"),
			 errdetail("%s", detail)));
}

/* -1, 0 or 1; only for validating input, so a function call is fine. */
static int
NumericSign(Numeric n)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(n),
											 NumericGetDatum(int64_to_numeric(0))));
}

/* Builds a state from parts after checking they are consistent. */
static PurchaseState *
StateFromParts(StateParts *sp)
{
	PurchaseState *st = segtier_purchase_new();
	Numeric		nums[NSUMS];
	bool		fast = true;
	int64		tx = sp->counts[0];

	for (int i = 0; i < NSUMS; i++)
	{
		fast = fast && SumFromCString(sp->sums[i], &st->sums[i]);
		nums[i] = DatumGetNumeric(DirectFunctionCall3(numeric_in,
													  CStringGetDatum(sp->sums[i]),
													  ObjectIdGetDatum(InvalidOid),
													  Int32GetDatum(-1)));
		if (numeric_is_nan(nums[i]) || numeric_is_inf(nums[i]))
			StateInvalid("Sums must be finite.");
	}
	for (int i = 0; i < 4; i++)
		if (sp->counts[i] < 0)
			StateInvalid("Counts must not be negative.");
	if ((tx > 0) != sp->has_purchase_times || (tx > 0) != (sp->ndays > 0) ||
		sp->ndays > tx)
		StateInvalid("There must be first and last purchase times and at least one, but at most transactions, purchase days exactly when transactions > 0.");
	if (sp->has_purchase_times &&
		(!IS_VALID_TIMESTAMP(sp->first_purchase) ||
		 !IS_VALID_TIMESTAMP(sp->last_purchase) ||
		 sp->first_purchase > sp->last_purchase))
		StateInvalid("The purchase times must be finite timestamps in range, the first not after the last.");
	for (int i = 1; i < sp->ndays; i++)
		if (sp->days[i] <= sp->days[i - 1])
			StateInvalid("Purchase days must be strictly increasing.");
	if (NumericSign(nums[SUM_PURCHASES]) < 0 || NumericSign(nums[SUM_FIRST_DAY]) < 0 ||
		NumericSign(numeric_sub_opt_error(nums[SUM_PURCHASES], nums[SUM_FIRST_DAY], NULL)) < 0)
		StateInvalid("The purchase sum and the first-day sum must satisfy 0 <= first-day sum <= purchase sum.");
	if ((tx == 0 && (NumericSign(nums[SUM_PURCHASES]) != 0)))
		StateInvalid("A state without purchases must have zero purchase sums.");
	if (NumericSign(nums[SUM_REFUNDS]) > 0 ||
		(NumericSign(nums[SUM_REFUNDS]) < 0) != (sp->counts[2] > 0))
		StateInvalid("The refund sum must be negative when there are refunds and zero otherwise.");

	st->first_purchase = sp->has_purchase_times ? sp->first_purchase : 0;
	st->last_purchase = sp->has_purchase_times ? sp->last_purchase : 0;
	st->transactions = tx;
	st->null_rows = sp->counts[1];
	st->refunds = sp->counts[2];
	st->future_rows = sp->counts[3];
	st = StateRebuild(st, sp->ndays, fast ? NULL : nums);
	memcpy(st->days, sp->days, sp->ndays * sizeof(int32));
	st->ndays = sp->ndays;
	return st;
}

/* A sum as out and send write it: -?digits[.digits], which numeric_in takes. */
static bool
SumSyntaxOK(const char *s)
{
	if (*s == '-')
		s++;
	if (!isdigit((unsigned char) *s))
		return false;
	while (isdigit((unsigned char) *s))
		s++;
	if (*s == '.')
		while (isdigit((unsigned char) *++s))
			;
	return *s == '\0';
}

/* Rejects text that is not the purchase_state text form. */
static void
StateSyntaxError(const char *str)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type purchase_state: \"%s\"", str),
			 errdetail("The form is 1;first;last;transactions;null_rows;refunds;future_rows;purchase_sum;refund_sum;first_day_sum;day,day,... with times in microseconds since 2000-01-01 UTC.")));
}

/* A whole field as a decimal int64, or a syntax error. */
static int64
ParseInt64Field(char *s, const char *whole)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0)
		StateSyntaxError(whole);
	return (int64) v;
}

/*
 * Text form: 1;first;last;transactions;null_rows;refunds;future_rows;
 * purchase_sum;refund_sum;first_day_sum;days (comma separated); times are
 * microseconds since 2000-01-01 UTC, empty when there are no purchases.
 */
PG_FUNCTION_INFO_V1(purchase_state_in);
Datum
purchase_state_in(PG_FUNCTION_ARGS)
{
	const char *str = PG_GETARG_CSTRING(0);
	char	   *copy = pstrdup(str);
	char	   *field[11];
	int			nfields = 0;
	StateParts	sp = {0};
	char	   *p;

	for (p = copy; nfields < 11; p++)
	{
		field[nfields++] = p;
		p = strchr(p, ';');
		if (p == NULL)
			break;
		*p = '\0';
	}
	if (nfields != 11 || p != NULL || strcmp(field[0], "1") != 0)
		StateSyntaxError(str);

	sp.has_purchase_times = (field[1][0] != '\0' || field[2][0] != '\0');
	if (sp.has_purchase_times)
	{
		sp.first_purchase = ParseInt64Field(field[1], str);
		sp.last_purchase = ParseInt64Field(field[2], str);
	}
	for (int i = 0; i < 4; i++)
		sp.counts[i] = ParseInt64Field(field[3 + i], str);
	for (int i = 0; i < NSUMS; i++)
	{
		if (!SumSyntaxOK(field[7 + i]))
			StateSyntaxError(str);
		sp.sums[i] = field[7 + i];
	}

	sp.days = palloc((strlen(field[10]) / 2 + 1) * sizeof(int32));
	for (p = field[10]; *p != '\0';)
	{
		char	   *comma = strchr(p, ',');
		int64		d;

		if (comma != NULL)
			*comma = '\0';
		d = ParseInt64Field(p, str);
		if (d < PG_INT32_MIN || d > PG_INT32_MAX)
			StateSyntaxError(str);
		sp.days[sp.ndays++] = (int32) d;
		if (comma == NULL)
			break;
		p = comma + 1;
		if (*p == '\0')
			StateSyntaxError(str);
	}
	PG_RETURN_POINTER(StateFromParts(&sp));
}

/* A sum's decimal text, as purchase_state_out and _send write it. */
static char *
StateSumText(const PurchaseState *st, int which)
{
	if (!(st->flags & PS_NUMERIC))
		return SumToCString(st->sums[which].value, st->sums[which].scale);
	return DatumGetCString(DirectFunctionCall1(numeric_out,
											   NumericGetDatum(StateSum(st, which))));
}

/* Writes the text form purchase_state_in reads back exactly. */
PG_FUNCTION_INFO_V1(purchase_state_out);
Datum
purchase_state_out(PG_FUNCTION_ARGS)
{
	PurchaseState *st = StateArg(fcinfo, 0, false);
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "%d;", PS_TEXT_VERSION);
	if (st->transactions > 0)
		appendStringInfo(&buf, INT64_FORMAT ";" INT64_FORMAT ";",
						 st->first_purchase, st->last_purchase);
	else
		appendStringInfoString(&buf, ";;");
	appendStringInfo(&buf, INT64_FORMAT ";" INT64_FORMAT ";" INT64_FORMAT ";" INT64_FORMAT,
					 st->transactions, st->null_rows, st->refunds, st->future_rows);
	for (int i = 0; i < NSUMS; i++)
		appendStringInfo(&buf, ";%s", StateSumText(st, i));
	appendStringInfoChar(&buf, ';');
	for (int i = 0; i < st->ndays; i++)
		appendStringInfo(&buf, i ? ",%d" : "%d", st->days[i]);
	PG_RETURN_CSTRING(buf.data);
}

/*
 * Wire format: version byte 1, a byte saying whether purchase times follow,
 * [first, last,] the four counts as int64, the three sums as text, the day
 * count and the days as int32.
 */
PG_FUNCTION_INFO_V1(purchase_state_recv);
Datum
purchase_state_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			version = pq_getmsgbyte(buf);
	StateParts	sp = {0};

	if (version != PS_TEXT_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("unsupported binary purchase_state version %d", version)));
	sp.has_purchase_times = pq_getmsgbyte(buf) != 0;
	if (sp.has_purchase_times)
	{
		sp.first_purchase = pq_getmsgint64(buf);
		sp.last_purchase = pq_getmsgint64(buf);
	}
	for (int i = 0; i < 4; i++)
		sp.counts[i] = pq_getmsgint64(buf);
	for (int i = 0; i < NSUMS; i++)
	{
		sp.sums[i] = pq_getmsgstring(buf);
		if (!SumSyntaxOK(sp.sums[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid sum \"%s\" in binary purchase_state", sp.sums[i])));
	}
	sp.ndays = pq_getmsgint(buf, 4);
	if (sp.ndays < 0 || sp.ndays > (buf->len - buf->cursor) / 4)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid day count %d in binary purchase_state", sp.ndays)));
	sp.days = palloc((sp.ndays + 1) * sizeof(int32));
	for (int i = 0; i < sp.ndays; i++)
		sp.days[i] = pq_getmsgint(buf, 4);
	PG_RETURN_POINTER(StateFromParts(&sp));
}

/* Writes the wire format purchase_state_recv reads. */
PG_FUNCTION_INFO_V1(purchase_state_send);
Datum
purchase_state_send(PG_FUNCTION_ARGS)
{
	PurchaseState *st = StateArg(fcinfo, 0, false);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, PS_TEXT_VERSION);
	pq_sendbyte(&buf, st->transactions > 0);
	if (st->transactions > 0)
	{
		pq_sendint64(&buf, st->first_purchase);
		pq_sendint64(&buf, st->last_purchase);
	}
	pq_sendint64(&buf, st->transactions);
	pq_sendint64(&buf, st->null_rows);
	pq_sendint64(&buf, st->refunds);
	pq_sendint64(&buf, st->future_rows);
	for (int i = 0; i < NSUMS; i++)
		pq_sendstring(&buf, StateSumText(st, i));
	pq_sendint32(&buf, st->ndays);
	for (int i = 0; i < st->ndays; i++)
		pq_sendint32(&buf, st->days[i]);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}
