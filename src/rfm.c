/*
 * rfm.c: the segtier.rfm type, a packed (r, f, m, scale) score triple.
 */
#include "segtier.h"

#include <ctype.h>

#include "access/hash.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"

PG_MODULE_MAGIC;

static void
rfm_check_scale(int scale)
{
	if (scale < RFM_MIN_SCALE || scale > RFM_MAX_SCALE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rfm scale %d is out of range", scale),
				 errdetail("The scale must be between %d and %d.",
						   RFM_MIN_SCALE, RFM_MAX_SCALE)));
}

static void
rfm_check_score(const char *name, int v, int scale)
{
	if (v < 1 || v > scale)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("rfm score %s = %d is out of range for scale %d",
						name, v, scale),
				 errdetail("Scores must be between 1 and the scale.")));
}

/* Validate and pack; the one place an rfm value is made. */
Rfm
rfm_make(int r, int f, int m, int scale)
{
	rfm_check_scale(scale);
	rfm_check_score("r", r, scale);
	rfm_check_score("f", f, scale);
	rfm_check_score("m", m, scale);
	return RFM_PACK(r, f, m, scale);
}

static void
rfm_syntax_error(const char *str)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type rfm: \"%s\"", str),
			 errhint("Use forms like '543', '5-4-3' or 'R5F4M3', optionally followed by '/n' for a scale n.")));
}

/*
 * Reads one or more digits, or fails.  A number that is too big for an int
 * reads as INT_MAX: it is out of range either way.
 */
static int
rfm_number(const char **p, const char *str)
{
	int			v = 0;

	if (!isdigit((unsigned char) **p))
		rfm_syntax_error(str);
	for (; isdigit((unsigned char) **p); (*p)++)
		v = (v <= (INT_MAX - 9) / 10) ? v * 10 + (**p - '0') : INT_MAX;
	return v;
}

/*
 * Accepts 543, 5-4-3, R5F4M3 (any case), each optionally followed by /n.
 * Numbers in the dashed and lettered forms and the scale may have several
 * digits, so that '10-1-1' or '543/10' is a value out of range, not a typo.
 */
static Rfm
rfm_parse(const char *str)
{
	const char *p = str;
	int			d[3];
	int			scale = RFM_DEFAULT_SCALE;

	while (isspace((unsigned char) *p))
		p++;
	if (*p == 'r' || *p == 'R')
	{
		for (int i = 0; i < 3; i++)
		{
			if (toupper((unsigned char) *p) != "RFM"[i])
				rfm_syntax_error(str);
			p++;
			d[i] = rfm_number(&p, str);
		}
	}
	else if (isdigit((unsigned char) p[0]) && isdigit((unsigned char) p[1]) &&
			 isdigit((unsigned char) p[2]) && !isdigit((unsigned char) p[3]) &&
			 p[3] != '-')
	{
		for (int i = 0; i < 3; i++)
			d[i] = *p++ - '0';
	}
	else
	{
		for (int i = 0; i < 3; i++)
		{
			if (i > 0 && *p++ != '-')
				rfm_syntax_error(str);
			d[i] = rfm_number(&p, str);
		}
	}
	if (*p == '/')
	{
		p++;
		scale = rfm_number(&p, str);
	}
	while (isspace((unsigned char) *p))
		p++;
	if (*p != '\0')
		rfm_syntax_error(str);

	return rfm_make(d[0], d[1], d[2], scale);
}

PG_FUNCTION_INFO_V1(rfm_in);
Datum
rfm_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_RFM(rfm_parse(PG_GETARG_CSTRING(0)));
}

/* The text -> rfm cast, without the cstring copy of an I/O conversion. */
PG_FUNCTION_INFO_V1(rfm_from_text);
Datum
rfm_from_text(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	int			len = VARSIZE_ANY_EXHDR(t);
	char		buf[32];
	char	   *str = len < (int) sizeof(buf) ? buf : palloc(len + 1);

	memcpy(str, VARDATA_ANY(t), len);
	str[len] = '\0';
	PG_RETURN_RFM(rfm_parse(str));
}

PG_FUNCTION_INFO_V1(rfm_out);
Datum
rfm_out(PG_FUNCTION_ARGS)
{
	Rfm			x = PG_GETARG_RFM(0);
	char	   *s = palloc(6);
	char	   *p = s;

	/* every field is one digit; snprintf would dominate the cost */
	*p++ = '0' + RFM_R(x);
	*p++ = '0' + RFM_F(x);
	*p++ = '0' + RFM_M(x);
	if (RFM_SCALE(x) != RFM_DEFAULT_SCALE)
	{
		*p++ = '/';
		*p++ = '0' + RFM_SCALE(x);
	}
	*p = '\0';
	PG_RETURN_CSTRING(s);
}

/* Wire format: a version byte (0), then r, f, m, scale as bytes. */
PG_FUNCTION_INFO_V1(rfm_recv);
Datum
rfm_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			version = pq_getmsgbyte(buf);
	int			r,
				f,
				m,
				n;

	if (version != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("unsupported binary rfm version %d", version)));
	r = pq_getmsgbyte(buf);
	f = pq_getmsgbyte(buf);
	m = pq_getmsgbyte(buf);
	n = pq_getmsgbyte(buf);
	PG_RETURN_RFM(rfm_make(r, f, m, n));
}

PG_FUNCTION_INFO_V1(rfm_send);
Datum
rfm_send(PG_FUNCTION_ARGS)
{
	Rfm			x = PG_GETARG_RFM(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, 0);
	pq_sendbyte(&buf, RFM_R(x));
	pq_sendbyte(&buf, RFM_F(x));
	pq_sendbyte(&buf, RFM_M(x));
	pq_sendbyte(&buf, RFM_SCALE(x));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(rfm_construct);
Datum
rfm_construct(PG_FUNCTION_ARGS)
{
	PG_RETURN_RFM(rfm_make(PG_GETARG_INT32(0), PG_GETARG_INT32(1),
						   PG_GETARG_INT32(2), PG_GETARG_INT32(3)));
}

PG_FUNCTION_INFO_V1(rfm_r);
Datum
rfm_r(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(RFM_R(PG_GETARG_RFM(0)));
}

PG_FUNCTION_INFO_V1(rfm_f);
Datum
rfm_f(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(RFM_F(PG_GETARG_RFM(0)));
}

PG_FUNCTION_INFO_V1(rfm_m);
Datum
rfm_m(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(RFM_M(PG_GETARG_RFM(0)));
}

PG_FUNCTION_INFO_V1(rfm_scale);
Datum
rfm_scale(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(RFM_SCALE(PG_GETARG_RFM(0)));
}

PG_FUNCTION_INFO_V1(rfm_cmp);
Datum
rfm_cmp(PG_FUNCTION_ARGS)
{
	Rfm			a = PG_GETARG_RFM(0);
	Rfm			b = PG_GETARG_RFM(1);

	PG_RETURN_INT32(a < b ? -1 : (a > b ? 1 : 0));
}

#define RFM_CMP_FN(name, op) \
PG_FUNCTION_INFO_V1(name); \
Datum \
name(PG_FUNCTION_ARGS) \
{ \
	PG_RETURN_BOOL(PG_GETARG_RFM(0) op PG_GETARG_RFM(1)); \
}

RFM_CMP_FN(rfm_eq, ==)
RFM_CMP_FN(rfm_ne, !=)
RFM_CMP_FN(rfm_lt, <)
RFM_CMP_FN(rfm_le, <=)
RFM_CMP_FN(rfm_gt, >)
RFM_CMP_FN(rfm_ge, >=)

PG_FUNCTION_INFO_V1(rfm_hash);
Datum
rfm_hash(PG_FUNCTION_ARGS)
{
	return hash_uint32((uint32) PG_GETARG_RFM(0));
}

PG_FUNCTION_INFO_V1(rfm_hash_extended);
Datum
rfm_hash_extended(PG_FUNCTION_ARGS)
{
	return hash_uint32_extended((uint32) PG_GETARG_RFM(0), PG_GETARG_INT64(1));
}
