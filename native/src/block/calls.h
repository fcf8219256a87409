// N-API calls of the block addon that run on the calling thread (block/calls.c).
#ifndef SPACE_BLOCK_CALLS_H
#define SPACE_BLOCK_CALLS_H
#include <node_api.h>

/** 0 when `v` is a typed array of type `want` (its data and element count out), else -1. */
int bytes_of (napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *count);

napi_value seal_segments (napi_env env, napi_callback_info info);
napi_value open_segments (napi_env env, napi_callback_info info);
napi_value digest_of (napi_env env, napi_callback_info info);
#endif
