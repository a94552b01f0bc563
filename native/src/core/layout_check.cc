// Compiles the kernel/userspace wire structs with -Wpadded so that implicit
// padding, which BPF and x86-64 may lay out differently, is an error here.
#pragma GCC diagnostic push
#pragma GCC diagnostic error "-Wpadded"
#include "../../../bpf/shared/events.h"
#pragma GCC diagnostic pop

#include "ExchangeRecord.h"

static_assert(sizeof(sonde_tuple) == 40, "sonde_tuple");
static_assert(sizeof(sonde_event_header) == 48, "sonde_event_header");
static_assert(sizeof(sonde_prev_message) == 24, "sonde_prev_message");
static_assert(SONDE_MSG_START_HEADER_BYTES == 48 + 40 + 24 + 16 + 8, "sonde_msg_start_event header");
static_assert(sizeof(sonde_close_event) == 48 + 40 + 24, "sonde_close_event");
static_assert(sizeof(sonde_h2_walk) == 24, "sonde_h2_walk");
static_assert(sizeof(sonde_conn_state) == 48 + 40 + 12 + 8 + 8 + SONDE_TAIL_BYTES + 4 + 8 + 2 * 24, "sonde_conn_state");
static_assert(SONDE_MSG_CONTINUE_HEADER_BYTES == 48 + 8, "sonde_msg_continue_event header");
static_assert(SONDE_H2_FRAMES_HEADER_BYTES == 48 + 16, "sonde_h2_frames_event header");
static_assert(sizeof(sonde_connect_event) == 48 + 40, "sonde_connect_event");
