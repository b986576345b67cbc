/* Times and durations on the command line and in filters: ISO-8601 / RFC 3339 in UTC or with an
 * offset, integer ns since the epoch, and durations like "1h30m" or "+500ms". All arithmetic is
 * on int64 ns with overflow checks; civil dates are converted without the C library's time zone
 * state (days-from-civil, proleptic Gregorian). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "filter_ast.h"
#include "ptb_error.h"

#define NS_PER_S 1000000000LL

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* Read exactly n digits at s[*i]. */
static bool digits(const char *s, size_t len, size_t *i, int n, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < n; k++) {
        if (*i >= len || !isdigit((unsigned char)s[*i]))
            return false;
        v = v * 10 + (unsigned)(s[(*i)++] - '0');
    }
    *out = v;
    return true;
}

static bool parse_int_ns(const char *s, size_t len, int64_t *ns)
{
    size_t i = 0;
    bool neg = false;
    if (len && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == len)
        return false;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        unsigned dgt = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - dgt) / 10)
            return false;
        v = v * 10 + dgt;
    }
    if (v > (uint64_t)INT64_MAX)
        return false;
    *ns = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

int query_time_parse(const char *s, size_t len, int64_t *ns)
{
    if (parse_int_ns(s, len, ns))
        return 0;
    size_t i = 0;
    unsigned y, mo, d, h = 0, mi = 0, se = 0;
    if (!digits(s, len, &i, 4, &y) || i >= len || s[i++] != '-' || !digits(s, len, &i, 2, &mo) ||
        i >= len || s[i++] != '-' || !digits(s, len, &i, 2, &d))
        return PTB_EINVAL;
    int64_t frac = 0;
    int64_t off_s = 0;
    if (i < len && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
        i++;
        if (!digits(s, len, &i, 2, &h) || i >= len || s[i++] != ':' || !digits(s, len, &i, 2, &mi))
            return PTB_EINVAL;
        if (i < len && s[i] == ':') {
            i++;
            if (!digits(s, len, &i, 2, &se))
                return PTB_EINVAL;
            if (i < len && (s[i] == '.' || s[i] == ',')) {
                i++;
                int nd = 0;
                int64_t scale = 100000000;
                while (i < len && isdigit((unsigned char)s[i])) {
                    if (nd < 9)
                        frac += (s[i] - '0') * scale;
                    scale /= 10;
                    nd++;
                    i++;
                }
                if (nd == 0)
                    return PTB_EINVAL;
            }
        }
        if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
            i++;
        } else if (i < len && (s[i] == '+' || s[i] == '-')) {
            int sign = s[i++] == '-' ? -1 : 1;
            unsigned oh, om = 0;
            if (!digits(s, len, &i, 2, &oh))
                return PTB_EINVAL;
            if (i < len && s[i] == ':')
                i++;
            if (i < len && !digits(s, len, &i, 2, &om))
                return PTB_EINVAL;
            if (oh > 23 || om > 59)
                return PTB_EINVAL;
            off_s = sign * (int64_t)(oh * 3600 + om * 60);
        }
    }
    if (i != len || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return PTB_EINVAL;
    int64_t days = days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - off_s;
    /* years 0000..9999 always fit: |secs| < 3e11, ns < 9.2e18 only up to year 2262 */
    if (secs > INT64_MAX / NS_PER_S - 1 || secs < INT64_MIN / NS_PER_S + 1)
        return PTB_EINVAL;
    *ns = secs * NS_PER_S + frac;
    return 0;
}

int query_duration_parse(const char *s, size_t len, int64_t *ns)
{
    size_t i = 0;
    if (i < len && s[i] == '+')
        i++;
    if (i == len)
        return PTB_EINVAL;
    int64_t total = 0;
    while (i < len) {
        if (!isdigit((unsigned char)s[i]))
            return PTB_EINVAL;
        uint64_t v = 0;
        while (i < len && isdigit((unsigned char)s[i])) {
            if (v > (uint64_t)INT64_MAX / 10)
                return PTB_EINVAL;
            v = v * 10 + (uint64_t)(s[i++] - '0');
        }
        size_t u = i;
        while (i < len && isalpha((unsigned char)s[i]))
            i++;
        size_t ul = i - u;
        int64_t mul;
        if (ul == 1 && s[u] == 'd')
            mul = 86400 * NS_PER_S;
        else if (ul == 1 && s[u] == 'h')
            mul = 3600 * NS_PER_S;
        else if (ul == 1 && s[u] == 'm')
            mul = 60 * NS_PER_S;
        else if (ul == 1 && s[u] == 's')
            mul = NS_PER_S;
        else if (ul == 2 && memcmp(s + u, "ms", 2) == 0)
            mul = 1000000;
        else if (ul == 2 && memcmp(s + u, "us", 2) == 0)
            mul = 1000;
        else if (ul == 2 && memcmp(s + u, "ns", 2) == 0)
            mul = 1;
        else
            return PTB_EINVAL;
        if (v > (uint64_t)(INT64_MAX / mul) || total > INT64_MAX - (int64_t)v * mul)
            return PTB_EINVAL;
        total += (int64_t)v * mul;
    }
    *ns = total;
    return 0;
}

void query_time_format(int64_t ns, int digits_, char *buf, size_t cap)
{
    int64_t secs = ns / NS_PER_S, sub = ns % NS_PER_S;
    if (sub < 0) {
        sub += NS_PER_S;
        secs--;
    }
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int hh = (int)(rem / 3600), mm = (int)(rem / 60 % 60), ss = (int)(rem % 60);
    if (digits_ <= 0)
        snprintf(buf, cap, "%04lld-%02u-%02uT%02d:%02d:%02dZ", (long long)y, m, d, hh, mm, ss);
    else if (digits_ <= 3)
        snprintf(buf, cap, "%04lld-%02u-%02uT%02d:%02d:%02d.%03lldZ", (long long)y, m, d, hh, mm,
                 ss, (long long)(sub / 1000000));
    else
        snprintf(buf, cap, "%04lld-%02u-%02uT%02d:%02d:%02d.%09lldZ", (long long)y, m, d, hh, mm,
                 ss, (long long)sub);
}
