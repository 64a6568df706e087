/*
 * sim_data.h - reading the simulator's outputs back as a downstream consumer would: its JSON
 * lines (readings, labels, weather, topology) parsed with jansson into per-apartment event
 * series, for the tests that check physics and ground truth on generated data.
 *
 * Ownership: sim_data_load fills a sim_data_t the caller frees with sim_data_fini.
 * Apartments and buildings are indexed by the numbers in their ids ("bldg_003" -> 2,
 * "apt_003_012" -> building 2, apartment 11). Lines that are not valid JSON (deliberately
 * broken ones) are counted in bad_lines and skipped.
 */
#ifndef HVS_TEST_SIM_DATA_H
#define HVS_TEST_SIM_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SD_MAX_BUILDINGS 16
#define SD_MAX_APTS 64
#define SD_MAX_ROOMS 5

enum { SD_HEAT, SD_WATER, SD_TEMP, SD_SETPOINT, SD_VALVE, SD_OTHER };

typedef struct sd_event {
    int64_t ts;
    int64_t line;   /* delivery order */
    uint8_t sensor; /* SD_* */
    int8_t room;    /* -1 apartment */
    double value;
} sd_event_t;

typedef struct sd_series {
    sd_event_t *ev;
    size_t n, cap;
} sd_series_t;

typedef struct sd_label {
    int building, apartment, room; /* -1 when absent */
    char category[16], type[32];
    int64_t start, end;
    double magnitude;
} sd_label_t;

typedef struct sd_weather {
    int64_t time;
    double temp, ghi, cloud;
} sd_weather_t;

typedef struct sd_building {
    bool present;
    char archetype[32];
    double area_m2, lat, lon;
    int napts;
    int64_t commissioned;
    char room_names[SD_MAX_APTS][SD_MAX_ROOMS][24];
    int nrooms[SD_MAX_APTS];
    sd_weather_t *weather; /* hourly, in file order */
    size_t nweather;
} sd_building_t;

typedef struct sim_data {
    sd_series_t apt[SD_MAX_BUILDINGS][SD_MAX_APTS];
    sd_building_t b[SD_MAX_BUILDINGS];
    sd_label_t *labels;
    size_t nlabels;
    size_t lines, bad_lines, nan_lines;
} sim_data_t;

/* Parse the outputs (any of the paths/buffers may be NULL). 0 or -1 with a message printed. */
int sim_data_load(sim_data_t *d, const char *readings, size_t len, const char *labels_path,
                  const char *weather_path, const char *topology_path);
void sim_data_fini(sim_data_t *d);

/* The counter `sensor` of an apartment at instant t: the last value reported at or before t
 * (carry-forward), NAN if none yet. Events must be sorted by ts (sd_sort). */
double sd_counter_at(const sd_series_t *s, int sensor, int64_t t);
/* The same for a room's sensor (room -1 = apartment level). */
double sd_value_at(const sd_series_t *s, int sensor, int room, int64_t t);
void sd_sort(sd_series_t *s);
/* Daily mean of a building's hourly weather on UTC day starting at `day`. */
bool sd_daily_weather(const sd_building_t *b, int64_t day, double *temp, double *ghi);
/* Read a whole file (malloc'd, NUL-terminated), NULL on error. */
char *sd_read_file(const char *path, size_t *len);

#endif
