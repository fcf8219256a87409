{
  "targets": [
    {
      "target_name": "space_fuse3",
      "sources": ["src/space_fuse3.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["<!@(pkg-config --cflags fuse3)"],
      "cflags_c": ["-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "libraries": ["<!@(pkg-config --libs fuse3)", "-lm"]
    },
    {
      "target_name": "space_mem",
      "sources": ["src/space_mem.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=c11", "-Wall", "-Wextra", "-O2"]
    },
    {
      "target_name": "space_block",
      "sources": ["src/space_block.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"]
    },
    {
      "target_name": "space_sys",
      "sources": ["src/space_sys.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"]
    }
  ]
}
