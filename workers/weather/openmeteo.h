/*
 * openmeteo.h - the Open-Meteo forecast API (seed 001 section 3.1): the request URL, and one
 * response body parsed and validated into hours.
 *
 * A response is hostile input (docs/design.md section 11). wx_openmeteo_parse accepts it only whole:
 * the first problem found fails the call with err->reason one of the WX_R_* strings below (the
 * label of hvs_weather_bad_responses_total) and err->msg naming the field, the index and the
 * value; nothing of a refused response is used. Checked:
 *   JSON syntax (cut short = truncated_json, anything else invalid_json; duplicate keys refused),
 *   a top-level object with `hourly` (an object) holding `time` (an array of at most
 *   max_hours strings "YYYY-MM-DDTHH:MM" as Open-Meteo writes them with timezone=GMT, or full
 *   ISO-8601 with a zone), each on the hour, strictly increasing and within 93 days before /
 *   17 days after `now`; every wanted variable present under either spelling
 *   (relative_humidity_2m|relativehumidity_2m, cloud_cover|cloudcover,
 *   wind_speed_10m|windspeed_10m) as an array as long as `time`, of numbers or null;
 *   values in range (temperature [-80, 60] degC, humidity and cloud cover [0, 100] %,
 *   shortwave radiation [0, 1500] W/m2, wind [0, 120] m/s); utc_offset_seconds present and 0,
 *   timezone (when present) GMT or UTC; units (when hourly_units is present) degC, %, W/m2, m/s;
 *   the answered latitude/longitude (when present) within 0.5 degrees of the asked ones
 *   (Open-Meteo snaps to its grid, a few km).
 * JSON null entries are legitimate: that value is unknown (bit clear in `present`).
 *
 * Classification: for a response at clock time `now`, an hour h is WX_OBSERVED when
 * h + 1 h <= now (the hour is over), else WX_FORECAST.
 *
 * Ownership: wx_hours_t is the caller's (zero-initialised; wx_hours_fini releases it); parse
 * reuses its buffer. Thread-safety: none needed (no shared state). Errors: 0 or HVS_EINVAL
 * (bad response, reason set) / HVS_ENOMEM.
 */
#ifndef WX_OPENMETEO_H
#define WX_OPENMETEO_H

#include <stddef.h>
#include <stdint.h>

#include "hvs/err.h"
#include "hvs/time.h"

typedef enum wx_var { WX_TEMP = 0, WX_RH, WX_CLOUD, WX_GHI, WX_WIND, WX_NVARS } wx_var_t;
#define WX_ALL_VARS ((1u << WX_NVARS) - 1)

/* Symbols of the WeatherKind enum, in schema order. */
typedef enum wx_kind { WX_OBSERVED = 0, WX_FORECAST = 1 } wx_kind_t;

typedef struct wx_hour {
    hvs_ms_t hour;   /* start of the hour, UTC epoch ms */
    uint8_t kind;    /* wx_kind_t */
    uint8_t present; /* bit v: v[v] is a number (clear: null or not asked) */
    double v[WX_NVARS];
} wx_hour_t;

typedef struct wx_hours {
    wx_hour_t *h;
    size_t n, cap;
} wx_hours_t;

/* Bad-response reasons (one per kind of problem). */
#define WX_R_TRUNCATED "truncated_json"
#define WX_R_INVALID_JSON "invalid_json"
#define WX_R_NOT_OBJECT "not_an_object"
#define WX_R_MISSING_HOURLY "missing_hourly"
#define WX_R_MISSING_TIME "missing_time"
#define WX_R_MISSING_VARIABLE "missing_variable"
#define WX_R_UNEQUAL "unequal_arrays"
#define WX_R_NON_NUMERIC "non_numeric"
#define WX_R_OUT_OF_RANGE "out_of_range"
#define WX_R_TIMEZONE "wrong_timezone"
#define WX_R_UNIT "wrong_unit"
#define WX_R_LOCATION "wrong_location"
#define WX_R_TIME_UNPARSABLE "time_unparsable"
#define WX_R_TIME_NOT_ON_HOUR "time_not_on_hour"
#define WX_R_TIME_NOT_INCREASING "time_not_increasing"
#define WX_R_TIME_OUT_OF_RANGE "time_out_of_range"
#define WX_R_TOO_MANY_HOURS "too_many_hours"
#define WX_R_NO_HOURS "no_hours"

typedef struct wx_parse_opts {
    hvs_ms_t now;               /* clock time of the response: classification, plausibility */
    unsigned want;              /* bit per wx_var_t that was asked for (must be present) */
    double latitude, longitude; /* asked for (NaN: not checked) */
    size_t max_hours;           /* 0 = 24 * (92 + 16), the API's own limit */
} wx_parse_opts_t;

int wx_openmeteo_parse(const char *body, size_t len, const wx_parse_opts_t *o, wx_hours_t *out,
                       hvs_err_t *err);

/* Valid range of a variable (inclusive) and its name in the Weather record. */
void wx_var_range(wx_var_t v, double *lo, double *hi);
const char *wx_var_field(wx_var_t v);

/*
 * `hourly` request parameter: a comma-separated list of Open-Meteo variable names (either
 * spelling). Sets *want to the variables named; HVS_EINVAL naming an unknown or repeated one.
 */
int wx_openmeteo_hourly_mask(const char *hourly, unsigned *want, hvs_err_t *err);

/*
 * <base>/v1/forecast?latitude=..&longitude=..&hourly=<hourly>&past_days=P&forecast_days=F
 * &windspeed_unit=ms&timezone=GMT (a trailing '/' of base is dropped; coordinates with 4
 * decimals, about 11 m). Returns the length, or -1 when it does not fit.
 */
int wx_openmeteo_url(char *buf, size_t len, const char *base, double latitude, double longitude,
                     const char *hourly, int past_days, int forecast_days);

void wx_hours_fini(wx_hours_t *h);
/* Room for n hours (contents kept): 0 or HVS_ENOMEM. */
int wx_hours_reserve(wx_hours_t *h, size_t n);

#endif
