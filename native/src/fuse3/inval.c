// Kernel-cache invalidation (next commit).
#include "fuse3.h"
