// The single include of napi.h: every Node-API setting lives here.
#pragma once

#define NAPI_CPP_EXCEPTIONS
#include <napi.h>
