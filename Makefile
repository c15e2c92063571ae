# PGXS build of the stored_object extension.
MODULE_big = stored_object
EXTENSION = stored_object
DATA = $(wildcard extension/stored_object--*.sql)

CORE_SRCS = $(wildcard src/core/*.cpp)
PG_SRCS = $(wildcard src/pg/*.cpp)
OBJS = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

REGRESS = type registry local s3 lifecycle escalation hardening listing public_urls object_attributes operation_stats uploads
REGRESS_OPTS = --inputdir=. --outputdir=$(REGRESS_OUTPUT_DIR)
REGRESS_OUTPUT_DIR ?= build/regress

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -I$(srcdir)/src
# make SO_TEST_HOOKS=1: the build the tests install, with the fault
# injection points they use (stored_object.test_pause_after_promote,
# stored_object.test_pad_wal_to_page_start).
# build/kind records the choice; switching drops the objects of the other.
BUILD_KIND := $(if $(filter 1,$(SO_TEST_HOOKS)),test,release)
ifeq ($(BUILD_KIND),test)
PG_CPPFLAGS += -DSO_TEST_HOOKS
endif
ifneq ($(BUILD_KIND),$(shell cat build/kind 2>/dev/null))
$(shell mkdir -p build && rm -f $(OBJS) $(OBJS:.o=.bc) $(MODULE_big).so && echo $(BUILD_KIND) > build/kind)
endif
# -MMD: rebuild objects when a header they include changes.
PG_CXXFLAGS = -std=c++17 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-register -MMD -MP
EXTRA_CLEAN = $(OBJS:.o=.d) build
# gcc links the module: name the C++ runtime, or loading fails on std:: symbols.
SHLIB_LINK = -lstdc++ -lcurl -lcrypto

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# C++17 for the clang bitcode step too (JIT-enabled servers install it);
# Makefile.global sets BITCODE_CXXFLAGS, so append after including it.
override BITCODE_CXXFLAGS += -std=c++17 -Wno-register

-include $(OBJS:.o=.d)

$(REGRESS_OUTPUT_DIR):
	mkdir -p $@
installcheck: | $(REGRESS_OUTPUT_DIR)
