# sparsegrain - plain GNU make. Build output goes to $(BUILD)/.
#   make            library + CLI          make test        install deps, build, run all tests
#   make study      the default study      make bench       benchmarks against peers
#   make check-asan tests under ASan+UBSan make fuzz        libFuzzer targets (FUZZ_SECONDS=N)
#   make MPI=1      the same in build-mpi/ with Open MPI (mpirun/srun: study, train --distributed)
#   make CUDA=1     the same in build-cuda/ with the GPU benchmark (bench-gpu; nvcc, docs/gpu.md)
#   make check-valgrind  a short pipeline under valgrind (no errors, no leaks)

ifeq ($(MPI),1)
BUILD    ?= build-mpi
endif
ifeq ($(CUDA),1)
BUILD    ?= build-cuda
endif
BUILD    ?= build
CC       ?= cc
# -O3: the kernels lean on GCC's -O3 unrolling and vectorisation; at -O2 a one-thread
# training step ran 1.3x (LeNet-5) to 3x (VGG-7: the Winograd layers, BN's backward)
# slower on the AMD EPYC (docs/performance.md, "Eighteenth pass"). make does not rebuild
# when OPT changes: use a fresh BUILD folder.
OPT      ?= -O3 -march=native
CFLAGS   ?= $(OPT) -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Wno-format-truncation -Wshadow -fopenmp \
            -Iinclude -Isrc -I$(BUILD)/gen -I/usr/include/x86_64-linux-gnu/openblas-openmp
LDLIBS   += -lprotobuf-c -lcjson -lz -lpng -lm -lpthread -ldl
LDFLAGS  += -fopenmp

# The optional MPI build: Open MPI's compiler wrapper adds its headers and library;
# only cli/dist.c looks at SG_MPI. It builds into build-mpi/ unless BUILD says otherwise.
ifeq ($(MPI),1)
CC       := mpicc
CFLAGS   += -DSG_MPI
endif

LIB_SRC  := $(sort $(wildcard src/*/*.c))
CLI_SRC  := $(sort $(wildcard cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c)) tests/harness.c

# C code for ONNX's protobuf schema, generated at build time from the onnx.proto that
# Debian's libonnx-dev ships (each build folder makes its own copy).
ONNX_PROTO ?= /usr/include/onnx/onnx.proto
GEN_C    := $(BUILD)/gen/onnx.pb-c.c
GEN_H    := $(BUILD)/gen/onnx.pb-c.h
GEN_OBJ  := $(BUILD)/gen/onnx.pb-c.o

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(GEN_OBJ)

# The optional GPU part (bench-gpu; docs/gpu.md): `make CUDA=1` builds into build-cuda/
# with nvcc for sm_90 (H100/H200). CUDA_HOME, CUDNN_INC and CUDNN_LIB point elsewhere
# when the headers and libraries are not under /usr/local/cuda.
ifeq ($(CUDA),1)
CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(CUDA_HOME)/bin/nvcc
CUDA_ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
CUDNN_INC ?= $(CUDA_HOME)/include
CUDNN_LIB ?= $(CUDA_HOME)/lib64
CFLAGS    += -DSG_CUDA
LIB_OBJ   += $(BUILD)/src/gpu/cuda/bench.o
LDLIBS    += -L$(CUDA_HOME)/lib64 -L$(CUDNN_LIB) -Wl,-rpath,$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDNN_LIB) \
             -lcudnn -lcusparse -lcublas -lcudart -lstdc++
$(BUILD)/src/gpu/cuda/bench.o: src/gpu/cuda/bench.cu include/sparsegrain/gpu.h
	@mkdir -p $(dir $@)
	$(NVCC) -O3 -std=c++17 $(CUDA_ARCH) -Iinclude -Isrc -I$(CUDNN_INC) -Xcompiler -Wall -c $< -o $@
endif
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
TOOL_SRC := $(sort $(wildcard tests/tools/*.c))
TOOLS    := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

LIB  := $(BUILD)/libsparsegrain.a
BIN  := $(BUILD)/sparsegrain
TBIN := $(BUILD)/sg_tests

.PHONY: all test unit deps deps-check study bench check-asan check-asan-native check-valgrind fuzz fuzz-build fuzz-bins fuzz-corpus clean tools
all: $(BIN) $(TOOLS)
tools: $(TOOLS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(GEN_C) $(GEN_H): $(ONNX_PROTO)
	@mkdir -p $(BUILD)/gen
	protoc-c --proto_path=$(dir $(ONNX_PROTO)) --c_out=$(BUILD)/gen $(ONNX_PROTO)

$(GEN_OBJ): $(GEN_C) $(GEN_H)
	$(CC) $(CFLAGS) -Wno-shadow -MMD -MP -c $< -o $@

# Sources that include the generated header must wait for it.
$(LIB_SRC:%.c=$(BUILD)/%.o) $(CLI_OBJ) $(TEST_OBJ) $(TOOL_SRC:%.c=$(BUILD)/%.o): | $(GEN_H)

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

$(TBIN): $(TEST_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(LIB) $(LDLIBS)

# Test-only helper programs (tests/tools/*.c), used by tests/cli/*.sh.
$(BUILD)/tools/%: $(BUILD)/tests/tools/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

deps:
	@bash scripts/install-deps.sh

# clang + libFuzzer and valgrind, for make fuzz and make check-valgrind
deps-check:
	@bash scripts/install-deps.sh check

# Unit tests (C) then command-line tests (shell); the last line is "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory -j$$(nproc) $(BIN) $(TBIN) $(TOOLS)
	@$(MAKE) --no-print-directory unit

unit: $(BIN) $(TBIN) $(TOOLS)
	@bash tests/run.sh $(BUILD)

study: deps $(BIN)
	@t0=$$(date +%s); \
	echo "$(BIN) study --model lenet5 --data mnist --seeds 3 --threads 1 -o study"; \
	$(BIN) study --model lenet5 --data mnist --seeds 3 --threads 1 -o study && \
	echo "$(BIN) report study" && $(BIN) report study && \
	echo "make study: $$(( $$(date +%s) - t0 )) s wall on $$(nproc) cores ($$(lscpu | sed -n 's/^Model name: *//p' | head -n 1))"

bench: deps $(BIN)
	@bash bench/run.sh $(BUILD)

# The sanitizer build targets AVX2 (x86-64-v3), so that the suite runs the AVX2
# kernels (Winograd products and transforms, BN's sums) under ASan and UBSan, as
# make test runs the AVX-512 ones on an AVX-512 machine. The browser test of the report
# is left out here (make test runs it): what it adds is Chromium's view of the page,
# and the C it runs (a study, the report) runs sanitized in cli/study and cli/report.
check-asan:
	@$(MAKE) --no-print-directory -j$$(nproc) BUILD=build-asan OPT="-O2 -march=x86-64-v3 -fno-omit-frame-pointer \
	  -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fopenmp -fsanitize=address,undefined" build-asan/sparsegrain build-asan/sg_tests tools
	@SG_TEST_SKIP=report_browser $(MAKE) --no-print-directory BUILD=build-asan OPT="-O2 -march=x86-64-v3 -fno-omit-frame-pointer \
	  -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fopenmp -fsanitize=address,undefined" unit

# check-asan builds for AVX2 (x86-64-v3), so the AVX-512 forms of the training and inference
# kernels (image lanes, sparse fc, the Winograd passes, the own GEMM, the sparse inference
# kernels) never ran under the sanitizers there: on a machine with AVX-512 this builds
# natively with ASan + UBSan and runs those kernels' tests; elsewhere it says so.
NATIVE_ASAN_TESTS := test_conv test_fc_sparse test_wino test_ops test_bn_relu test_batch_parallel test_infer
check-asan-native:
	@if grep -qw avx512f /proc/cpuinfo; then \
	  $(MAKE) --no-print-directory -j$$(nproc) BUILD=build-asan-native OPT="-O2 -march=native \
	    -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	    LDFLAGS="-fopenmp -fsanitize=address,undefined" build-asan-native/sg_tests && \
	  build-asan-native/sg_tests $(NATIVE_ASAN_TESTS); \
	else echo "check-asan-native: no AVX-512 on this machine (check-asan covers the AVX2 build)"; fi

# valgrind cannot run AVX-512 code: this build targets AVX2 (x86-64-v3).
check-valgrind: deps-check
	@$(MAKE) --no-print-directory -j$$(nproc) BUILD=build-valgrind OPT="-O2 -march=x86-64-v3" \
	  build-valgrind/sparsegrain
	@bash tests/valgrind.sh build-valgrind

# libFuzzer targets (tests/fuzz/fuzz_*.c, one per reader) linked against a clang build
# of the library with ASan + UBSan and fuzzer coverage, in build-fuzz/. `make fuzz`
# runs each for FUZZ_SECONDS from its seed corpus (tests/fuzz/corpus/<target>/) and
# fails on any crash, leak, timeout or oversized allocation (tests/fuzz/run.sh).
FUZZ_SECONDS ?= 10
FUZZ_CC      ?= clang
FUZZ_OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined -fsanitize=fuzzer-no-link \
                -Wno-unknown-warning-option
FUZZ_SRC     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

fuzz-bins: $(FUZZ_BINS)

fuzz-build:
	@$(MAKE) --no-print-directory -j$$(nproc) BUILD=build-fuzz CC=$(FUZZ_CC) OPT="$(FUZZ_OPT)" \
	  LDFLAGS="-fopenmp -fsanitize=address,undefined" fuzz-bins

fuzz: deps-check
	@$(MAKE) --no-print-directory fuzz-build
	@bash tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

# Regenerates the seed corpora from valid files our own code writes (commit the result).
fuzz-corpus: $(BIN) $(BUILD)/tools/fuzz_corpus
	@bash tests/fuzz/make-corpus.sh $(BUILD)

clean:
	rm -rf build build-asan build-mpi build-fuzz build-valgrind build-cuda

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(TOOL_SRC:%.c=$(BUILD)/%.d)
