/*
 * segment.c: the named maps from scores to segments (rfm11, rfm8), the
 * lifecycle stage of a customer, and the rule-based churn flag.
 */
#include "segtier.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

typedef enum Rfm11Segment
{
	SEG_CHAMPIONS,
	SEG_LOYAL,
	SEG_POTENTIAL_LOYALIST,
	SEG_NEW,
	SEG_PROMISING,
	SEG_NEED_ATTENTION,
	SEG_ABOUT_TO_SLEEP,
	SEG_AT_RISK,
	SEG_CANT_LOSE,
	SEG_HIBERNATING,
	SEG_LOST
} Rfm11Segment;

static const char *const rfm11_labels[][2] = {
	[SEG_CHAMPIONS] = {"Champions", "冠军客户"},
	[SEG_LOYAL] = {"Loyal Customers", "忠诚客户"},
	[SEG_POTENTIAL_LOYALIST] = {"Potential Loyalist", "潜在忠诚客户"},
	[SEG_NEW] = {"New Customers", "新客户"},
	[SEG_PROMISING] = {"Promising", "有潜力客户"},
	[SEG_NEED_ATTENTION] = {"Need Attention", "需要关注客户"},
	[SEG_ABOUT_TO_SLEEP] = {"About To Sleep", "即将沉睡客户"},
	[SEG_AT_RISK] = {"At Risk", "有流失风险客户"},
	[SEG_CANT_LOSE] = {"Can't Lose Them", "不能失去的客户"},
	[SEG_HIBERNATING] = {"Hibernating", "休眠客户"},
	[SEG_LOST] = {"Lost", "已流失客户"},
};

/* rfm11 cells, indexed [R-1][FM-1] on the 1..5 scale. */
static const Rfm11Segment rfm11_map[5][5] = {
	{SEG_LOST, SEG_HIBERNATING, SEG_AT_RISK, SEG_AT_RISK, SEG_CANT_LOSE},
	{SEG_HIBERNATING, SEG_HIBERNATING, SEG_AT_RISK, SEG_AT_RISK, SEG_CANT_LOSE},
	{SEG_ABOUT_TO_SLEEP, SEG_ABOUT_TO_SLEEP, SEG_NEED_ATTENTION, SEG_LOYAL, SEG_LOYAL},
	{SEG_PROMISING, SEG_POTENTIAL_LOYALIST, SEG_POTENTIAL_LOYALIST, SEG_LOYAL, SEG_LOYAL},
	{SEG_NEW, SEG_POTENTIAL_LOYALIST, SEG_POTENTIAL_LOYALIST, SEG_CHAMPIONS, SEG_CHAMPIONS},
};

/* rfm8 labels, indexed by (r_high << 2) | (f_high << 1) | m_high. */
static const char *const rfm8_labels[8][2] = {
	{"General Win-back", "一般挽留客户"},
	{"Important Win-back", "重要挽留客户"},
	{"General Retention", "一般保持客户"},
	{"Important Retention", "重要保持客户"},
	{"General Development", "一般发展客户"},
	{"Important Development", "重要发展客户"},
	{"General Value", "一般价值客户"},
	{"Important Value", "重要价值客户"},
};

/* A score on scale n mapped onto 1..5: ceil(score * 5 / n). */
static inline int
to_five(int score, int scale)
{
	/* the default scale needs no division (it dominated rfm_segment) */
	return scale == 5 ? score : (score * 5 + scale - 1) / scale;
}

static const char *
segtier_rfm11(Rfm x, SegtierLang lang)
{
	int			n = RFM_SCALE(x);
	int			r = to_five(RFM_R(x), n);
	int			fm = (to_five(RFM_F(x), n) + to_five(RFM_M(x), n) + 1) / 2;

	return rfm11_labels[rfm11_map[r - 1][fm - 1]][lang];
}

const char *
segtier_rfm8(bool r_high, bool f_high, bool m_high, SegtierLang lang)
{
	return rfm8_labels[(r_high << 2) | (f_high << 1) | m_high][lang];
}

/* High means above the scale's midpoint: 4 and 5 on a 1..5 scale. */
static inline bool
segtier_rfm_high(int score, int scale)
{
	return 2 * score > scale + 1;
}

/* Whether a segment scheme is rfm8 (else rfm11); any other name is an error. */
bool
segtier_segment_rfm8(text *scheme)
{
	if (segtier_text_is(scheme, "rfm11"))
		return false;
	if (segtier_text_is(scheme, "rfm8"))
		return true;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown segment scheme \"%s\"", text_to_cstring(scheme)),
			 errhint("Use 'rfm11' or 'rfm8'.")));
	return false;
}

/* The segment of an rfm score: rfm8 by the scale's midpoint, or rfm11. */
const char *
segtier_segment(Rfm x, bool rfm8, SegtierLang lang)
{
	int			n = RFM_SCALE(x);

	if (!rfm8)
		return segtier_rfm11(x, lang);
	return segtier_rfm8(segtier_rfm_high(RFM_R(x), n), segtier_rfm_high(RFM_F(x), n),
						segtier_rfm_high(RFM_M(x), n), lang);
}

PG_FUNCTION_INFO_V1(rfm_segment);
Datum
rfm_segment(PG_FUNCTION_ARGS)
{
	bool		rfm8 = segtier_segment_rfm8(PG_GETARG_TEXT_PP(1));

	PG_RETURN_TEXT_P(cstring_to_text(segtier_segment(PG_GETARG_RFM(0), rfm8,
													 segtier_parse_lang(PG_GETARG_TEXT_PP(2)))));
}

/* rfm8 from high/low flags decided elsewhere (e.g. against population means). */
PG_FUNCTION_INFO_V1(rfm8_segment);
Datum
rfm8_segment(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(segtier_rfm8(PG_GETARG_BOOL(0),
												  PG_GETARG_BOOL(1),
												  PG_GETARG_BOOL(2),
												  segtier_parse_lang(PG_GETARG_TEXT_PP(3)))));
}

const char *const segtier_lifecycle_stages[LIFECYCLE_STAGES] = {
	"prospect", "new", "active", "loyal", "at_risk", "churned", "reactivated"
};

static double
days_between(TimestampTz from, TimestampTz to)
{
	return (double) (to - from) / (double) USECS_PER_DAY;
}

void
segtier_lifecycle_check(const LifecycleWindows *w)
{
	if (w->new_days < 0 || w->active_days < w->new_days ||
		w->churn_days < w->active_days || w->loyal_purchases < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid lifecycle windows: new_days %d, active_days %d, churn_days %d, loyal_purchases %d",
						w->new_days, w->active_days, w->churn_days, w->loyal_purchases),
				 errdetail("Windows must satisfy 0 <= new_days <= active_days <= churn_days, and loyal_purchases must be at least 1.")));
}

/* Index of a stage name in segtier_lifecycle_stages; an unknown one is an error. */
int
segtier_lifecycle_parse(const char *name)
{
	for (int i = 0; i < LIFECYCLE_STAGES; i++)
		if (strcmp(name, segtier_lifecycle_stages[i]) == 0)
			return i;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown lifecycle stage \"%s\"", name),
			 errhint("Stages are prospect, new, active, loyal, at_risk, churned and reactivated.")));
	return -1;
}

/*
 * Lifecycle stage, first matching rule wins (README "Lifecycle stages"):
 * prospect (no purchase), churned (silent > churn_days), at_risk (silent >
 * active_days), reactivated (previous stage churned or reactivated), new
 * (first purchase within new_days), loyal (purchases >= loyal_purchases),
 * else active.  has_times is false for a customer without purchase times;
 * prev is a stage index or -1.  Windows are checked by the caller.
 */
int
segtier_lifecycle(bool has_times, TimestampTz first, TimestampTz last,
				  int64 purchases, TimestampTz as_of,
				  const LifecycleWindows *w, int prev)
{
	double		silent;

	if (purchases <= 0 || !has_times)
		return LIFECYCLE_PROSPECT;
	if (TIMESTAMP_NOT_FINITE(first) || TIMESTAMP_NOT_FINITE(last) || TIMESTAMP_NOT_FINITE(as_of))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lifecycle times must be finite")));
	if (last < first)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("last purchase is before first purchase")));
	if (last > as_of)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("last purchase is after the as-of time"),
				 errdetail("Purchases after the as-of time are not part of the customer's history.")));

	silent = days_between(last, as_of);
	if (silent > w->churn_days)
		return LIFECYCLE_CHURNED;
	if (silent > w->active_days)
		return LIFECYCLE_AT_RISK;
	if (prev == LIFECYCLE_CHURNED || prev == LIFECYCLE_REACTIVATED)
		return LIFECYCLE_REACTIVATED;
	if (days_between(first, as_of) <= w->new_days)
		return LIFECYCLE_NEW;
	if (purchases >= w->loyal_purchases)
		return LIFECYCLE_LOYAL;
	return LIFECYCLE_ACTIVE;
}

/* Not strict: a customer with no purchase has NULL times. */
PG_FUNCTION_INFO_V1(lifecycle_stage);
Datum
lifecycle_stage(PG_FUNCTION_ARGS)
{
	LifecycleWindows w;
	int			prev = -1;

	for (int i = 3; i <= 7; i++)
		if (PG_ARGISNULL(i))
			PG_RETURN_NULL();
	w.new_days = PG_GETARG_INT32(4);
	w.active_days = PG_GETARG_INT32(5);
	w.churn_days = PG_GETARG_INT32(6);
	w.loyal_purchases = PG_GETARG_INT32(7);
	segtier_lifecycle_check(&w);
	if (!PG_ARGISNULL(8))
		prev = segtier_lifecycle_parse(text_to_cstring(PG_GETARG_TEXT_PP(8)));
	PG_RETURN_TEXT_P(cstring_to_text(segtier_lifecycle_stages[
		segtier_lifecycle(!PG_ARGISNULL(0) && !PG_ARGISNULL(1),
						  PG_ARGISNULL(0) ? 0 : PG_GETARG_TIMESTAMPTZ(0),
						  PG_ARGISNULL(1) ? 0 : PG_GETARG_TIMESTAMPTZ(1),
						  PG_ARGISNULL(2) ? 0 : PG_GETARG_INT64(2),
						  PG_GETARG_TIMESTAMPTZ(3), &w, prev)]));
}

/*
 * The seeds' churn rule on monthly spend (oldest first, complete months):
 * spend fell by at least min_decline in each of the last `months` months
 * against the month before, or no purchase for more than at_risk_days.
 * Returns whether the customer is at risk, with *reason (NULL when not).
 */
bool
segtier_churn(const float8 *spend, int nspend, float8 silent, float8 at_risk_days,
			  float8 min_decline, int32 months, char **reason)
{
	bool		declining = false;
	bool		silent_too_long;

	if (months < 1 || months > 24)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("months must be between 1 and 24, not %d", months)));
	if (!(min_decline > 0 && min_decline <= 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("min_decline must be in (0, 1], not %g", min_decline)));
	if (!(silent >= 0) || !(at_risk_days >= 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("days must not be negative or NaN, not %g and %g", silent, at_risk_days)));
	if (nspend >= months + 1)
	{
		declining = true;
		for (int i = nspend - months; i < nspend; i++)
			if (!(spend[i - 1] > 0 && spend[i] <= (1 - min_decline) * spend[i - 1]))
				declining = false;
	}
	silent_too_long = silent > at_risk_days;

	*reason = NULL;
	if (declining)
		*reason = psprintf("spend down at least %g%% in each of the last %d months",
						   min_decline * 100, months);
	if (silent_too_long)
	{
		char	   *s = psprintf("no purchase for %.0f days", floor(silent));

		*reason = *reason ? psprintf("%s; %s", *reason, s) : s;
	}
	return declining || silent_too_long;
}

/* The monthly spend of churn_rule: a one-dimensional float8[] of numbers. */
static int
segtier_churn_spend(ArrayType *arr, const float8 **spend)
{
	int			n;

	if (ARR_NDIM(arr) > 1 || (ARR_HASNULL(arr) && array_contains_nulls(arr)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("monthly spend must be a one-dimensional array without NULLs")));
	*spend = (const float8 *) ARR_DATA_PTR(arr);
	n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	for (int i = 0; i < n; i++)
		if (isnan((*spend)[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("monthly spend must not contain NaN")));
	return n;
}

PG_FUNCTION_INFO_V1(churn_rule);
Datum
churn_rule(PG_FUNCTION_ARGS)
{
	const float8 *spend = NULL;
	int			nspend = 0;
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	char	   *reason;

	for (int i = 1; i <= 4; i++)
		if (PG_ARGISNULL(i))
			PG_RETURN_NULL();
	if (!PG_ARGISNULL(0))
		nspend = segtier_churn_spend(PG_GETARG_ARRAYTYPE_P(0), &spend);
	values[0] = BoolGetDatum(segtier_churn(spend, nspend, PG_GETARG_FLOAT8(1),
										   PG_GETARG_FLOAT8(2), PG_GETARG_FLOAT8(3),
										   PG_GETARG_INT32(4), &reason));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "churn_rule must return a composite type");
	tupdesc = BlessTupleDesc(tupdesc);
	if (reason)
		values[1] = CStringGetTextDatum(reason);
	else
		nulls[1] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
