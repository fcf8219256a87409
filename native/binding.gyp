{
  "targets": [
    {
      "target_name": "space_fuse3",
      "variables": {
        "blake3": "<!(bash ../scripts/build-native.sh --blake3-dir)"
      },
      "sources": ["src/fuse3/napi-util.c", "src/fuse3/requests.c", "src/fuse3/ops.c", "src/fuse3/listing.c",
                  "src/fuse3/inval.c", "src/fuse3/mount.c", "src/fuse3/fastread.c", "src/fuse3/fastread-table.c",
                  "src/fuse3/fastread-napi.c", "src/block/segments.c",
                  "src/block/seal.c", "<(blake3)/blake3.c", "<(blake3)/blake3_dispatch.c", "<(blake3)/blake3_portable.c"],
      "include_dirs": ["<(blake3)"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["<!@(pkg-config --cflags fuse3)", "-fvisibility=hidden"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "libraries": ["<!@(pkg-config --libs fuse3)", "-lm"],
      "conditions": [
        ["target_arch == 'x64'", {
          "sources": ["<(blake3)/blake3_sse2_x86-64_unix.S", "<(blake3)/blake3_sse41_x86-64_unix.S",
                      "<(blake3)/blake3_avx2_x86-64_unix.S", "<(blake3)/blake3_avx512_x86-64_unix.S"]
        }],
        ["target_arch == 'arm64'", {
          "sources": ["<(blake3)/blake3_neon.c"],
          "defines": ["BLAKE3_USE_NEON=1"]
        }],
        ["target_arch != 'x64' and target_arch != 'arm64'", {
          "defines": ["BLAKE3_NO_SSE2", "BLAKE3_NO_SSE41", "BLAKE3_NO_AVX2", "BLAKE3_NO_AVX512"]
        }]
      ]
    },
    {
      "target_name": "space_mem",
      "sources": ["src/space_mem.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=c11", "-Wall", "-Wextra", "-O2"]
    },
    {
      "target_name": "space_block",
      "variables": {
        "blake3": "<!(bash ../scripts/build-native.sh --blake3-dir)"
      },
      "sources": ["src/space_block.c", "src/block/seal.c", "src/block/segments.c", "src/block/calls.c", "<(blake3)/blake3.c", "<(blake3)/blake3_dispatch.c", "<(blake3)/blake3_portable.c"],
      "include_dirs": ["<(blake3)"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-fvisibility=hidden"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "conditions": [
        ["target_arch == 'x64'", {
          "sources": ["<(blake3)/blake3_sse2_x86-64_unix.S", "<(blake3)/blake3_sse41_x86-64_unix.S",
                      "<(blake3)/blake3_avx2_x86-64_unix.S", "<(blake3)/blake3_avx512_x86-64_unix.S"]
        }],
        ["target_arch == 'arm64'", {
          "sources": ["<(blake3)/blake3_neon.c"],
          "defines": ["BLAKE3_USE_NEON=1"]
        }],
        ["target_arch != 'x64' and target_arch != 'arm64'", {
          "defines": ["BLAKE3_NO_SSE2", "BLAKE3_NO_SSE41", "BLAKE3_NO_AVX2", "BLAKE3_NO_AVX512"]
        }]
      ]
    },
    {
      "target_name": "space_sys",
      "sources": ["src/space_sys.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"]
    }
  ]
}
