/*
 * demo_fares.h - what an offline e-purse validator on the demo network
 * (config/fares-demo) deducts: the peak fare for the card's category. Used by
 * the generators (tapgen, bench/fare_day) so their e-purse taps carry the
 * amounts a real validator would write; the fare engine rates them again
 * and audits the differences (transfers, caps, off-peak fares).
 */
#ifndef TAPGATE_DEMO_FARES_H
#define TAPGATE_DEMO_FARES_H

#include "proto/proto.h"

#include <stdint.h>

#define DEMO_BUS_FEN 200u /* every bus route, flat */

/* Metro distance bands by stations travelled: <= 2, <= 4, <= 6, more. */
static inline uint32_t demo_metro_fen(uint32_t from_stop, uint32_t to_stop)
{
	uint32_t d = from_stop > to_stop ? from_stop - to_stop : to_stop - from_stop;
	return d <= 2 ? 200 : d <= 4 ? 300 : d <= 6 ? 400 : 500;
}

/* Seniors and students half, disabled riders free. */
static inline uint32_t demo_offline_fare(uint8_t category, uint32_t adult_fen)
{
	return category == FP_CATEGORY_DISABLED ? 0 : category == FP_CATEGORY_ADULT ? adult_fen : adult_fen / 2;
}

#endif
