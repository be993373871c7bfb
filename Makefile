# sparsegrain - plain GNU make. Build output goes to $(BUILD)/.
#   make            library + CLI          make test        install deps, build, run all tests
#   make study      the default study      make bench       benchmarks against peers
#   make check-asan tests under ASan+UBSan make fuzz        libFuzzer targets (FUZZ_SECONDS=N)

BUILD    ?= build
CC       ?= cc
OPT      ?= -O3 -march=native
CFLAGS   ?= $(OPT) -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Wno-format-truncation -Wshadow -fopenmp \
            -Iinclude -Isrc -I$(BUILD)/gen -I/usr/include/x86_64-linux-gnu/openblas-openmp
LDLIBS   += -lcjson -lz -lpng -lm -lpthread -ldl
LDFLAGS  += -fopenmp

LIB_SRC  := $(sort $(wildcard src/*/*.c))
CLI_SRC  := $(sort $(wildcard cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c)) tests/harness.c

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

LIB  := $(BUILD)/libsparsegrain.a
BIN  := $(BUILD)/sparsegrain
TBIN := $(BUILD)/sg_tests

.PHONY: all test unit deps study bench check-asan fuzz clean
all: $(BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

$(TBIN): $(TEST_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(LIB) $(LDLIBS)

deps:
	@bash scripts/install-deps.sh

# Unit tests (C) then command-line tests (shell); the last line is "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory unit

unit: $(BIN) $(TBIN)
	@bash tests/run.sh $(BUILD)

study: deps $(BIN)
	$(BIN) study --model lenet5 --data mnist -o study
	$(BIN) report study

bench: deps $(BIN)
	@bash bench/run.sh $(BUILD)

check-asan:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -fno-omit-frame-pointer \
	  -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fopenmp -fsanitize=address,undefined" unit

clean:
	rm -rf build build-asan

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
