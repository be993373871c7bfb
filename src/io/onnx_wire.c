/* The protobuf wire format of an ONNX file, walked by our code where protobuf-c alone
 * is not enough: a structural check before protobuf-c sees the bytes, and a lean copy
 * of the ModelProto without the initializers' raw_data, so that the weights (almost
 * all of a model file) are read from the file in place instead of being copied by
 * protobuf-c into fresh memory first. */
#include "io/onnx.h"

/* ---- the check ----
 * protobuf-c (1.4) unpacks nested messages by recursion without a depth limit, so a
 * small file of deeply nested messages (graph > node > attribute > graph > ...)
 * overflows the stack; and it accepts an over-long encoded field number 0 as an
 * unknown field, which it later writes back as a tag no parser reads. This walk
 * follows the schema through protobuf-c's descriptors and refuses both. */
#define WIRE_MAX_DEPTH 100

static int wire_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 64 && *i < len; shift += 7) {
        const uint8_t b = p[(*i)++];
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return 0;
}

static const char *check(const uint8_t *p, size_t len, const ProtobufCMessageDescriptor *d,
                         int depth) {
    if (depth > WIRE_MAX_DEPTH) return "messages nested more than 100 deep";
    size_t i = 0;
    while (i < len) {
        uint64_t key, v;
        if (!wire_varint(p, len, &i, &key)) return "a field tag is truncated";
        const uint64_t field = key >> 3;
        if (field == 0 || field > 0x1fffffffu) return "a field number is out of range";
        switch (key & 7) {
        case 0:
            if (!wire_varint(p, len, &i, &v)) return "a varint is truncated";
            break;
        case 1:
            if (len - i < 8) return "a 64-bit field is truncated";
            i += 8;
            break;
        case 5:
            if (len - i < 4) return "a 32-bit field is truncated";
            i += 4;
            break;
        case 2: {
            if (!wire_varint(p, len, &i, &v) || v > len - i) return "a field runs past its end";
            const ProtobufCFieldDescriptor *fd =
                d ? protobuf_c_message_descriptor_get_field(d, (unsigned)field) : NULL;
            if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE) {
                const char *why = check(p + i, (size_t)v, fd->descriptor, depth + 1);
                if (why) return why;
            }
            i += (size_t)v;
            break;
        }
        default: return "a field has an unknown wire type";
        }
    }
    return NULL;
}

const char *sgi_onnx_wire_check(const uint8_t *p, size_t len, const ProtobufCMessageDescriptor *d) {
    return check(p, len, d, 0);
}

/* ---- the lean copy ---- */
enum { F_MODEL_GRAPH = 7, F_GRAPH_INITIALIZER = 5, F_TENSOR_RAW_DATA = 9 };

/* One field of a message: number, wire type, where it starts, its payload, its end. */
struct field {
    uint64_t num;
    int type;
    size_t start, pay, end;
};

static int field_at(const uint8_t *p, size_t len, size_t *i, struct field *f) {
    uint64_t key, v = 0;
    f->start = *i;
    if (!wire_varint(p, len, i, &key)) return 0;
    f->num = key >> 3;
    f->type = (int)(key & 7);
    switch (f->type) {
    case 0:
        f->pay = *i;
        if (!wire_varint(p, len, i, &v)) return 0;
        break;
    case 1: v = 8; f->pay = *i; break;
    case 5: v = 4; f->pay = *i; break;
    case 2:
        if (!wire_varint(p, len, i, &v)) return 0;
        f->pay = *i;
        break;
    default: return 0;
    }
    if (f->type != 0) {
        if (v > len - *i) return 0;
        *i += (size_t)v;
    }
    f->end = *i;
    return 1;
}

/* The field at *i of p[0..len), or 0 at the end (*i == len) or on malformed bytes
 * (*i set past len). */
static int next_field(const uint8_t *p, size_t len, size_t *i, struct field *f) {
    if (*i >= len) return 0;
    if (!field_at(p, len, i, f)) {
        *i = SIZE_MAX;
        return 0;
    }
    return 1;
}

static size_t varint_put(uint8_t *o, uint64_t v) {
    size_t n = 0;
    do {
        o[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* A length-delimited field whose payload is written next: its length, unknown until
 * the payload is written, gets 10 bytes now and is shrunk to its size by close_sub. */
static size_t open_sub(struct sgi_buf *b, uint64_t num) {
    uint8_t tag[10], room[10] = {0};
    sgi_buf_put(b, tag, varint_put(tag, num << 3 | 2));
    sgi_buf_put(b, room, sizeof room);
    return b->len;
}

static void close_sub(struct sgi_buf *b, size_t at) {
    if (b->failed) return;
    const size_t n = b->len - at;
    uint8_t v[10];
    const size_t k = varint_put(v, n);
    memcpy(b->data + at - 10, v, k);
    memmove(b->data + at - 10 + k, b->data + at, n);
    b->len -= 10 - k;
}

static int add_raw(struct sgi_onnx_lean *L, size_t off, size_t len) {
    if (L->n == L->cap) {
        const size_t cap = L->cap ? 2 * L->cap : 64;
        struct sgi_onnx_raw *r = realloc(L->raw, cap * sizeof *r);
        if (!r) return 0;
        L->raw = r;
        L->cap = cap;
    }
    L->raw[L->n].off = off;
    L->raw[L->n].len = len;
    L->n++;
    return 1;
}

/* A TensorProto at buf[s..e) without its raw_data bytes: the field stays, empty, so
 * protobuf-c still sets has_raw_data; the last one counts, as in protobuf. */
static int lean_tensor(const uint8_t *buf, size_t s, size_t e, struct sgi_onnx_lean *L) {
    size_t i = 0, off = SIZE_MAX, len = 0;
    struct field f;
    const uint8_t *p = buf + s;
    while (next_field(p, e - s, &i, &f)) {
        if (f.num == F_TENSOR_RAW_DATA && f.type == 2) {
            off = s + f.pay, len = f.end - f.pay;
            const uint8_t empty[2] = {F_TENSOR_RAW_DATA << 3 | 2, 0};
            sgi_buf_put(&L->msg, empty, 2);
        } else {
            sgi_buf_put(&L->msg, p + f.start, f.end - f.start);
        }
    }
    return i == e - s && add_raw(L, off, len);
}

static int lean_graph(const uint8_t *buf, size_t s, size_t e, struct sgi_onnx_lean *L) {
    size_t i = 0;
    struct field f;
    const uint8_t *p = buf + s;
    while (next_field(p, e - s, &i, &f)) {
        if (f.num == F_GRAPH_INITIALIZER && f.type == 2) {
            const size_t at = open_sub(&L->msg, f.num);
            if (!lean_tensor(buf, s + f.pay, s + f.end, L)) return 0;
            close_sub(&L->msg, at);
        } else {
            sgi_buf_put(&L->msg, p + f.start, f.end - f.start);
        }
    }
    return i == e - s;
}

/* Bytes of raw_data in the graph's initializers (the last field of each tensor), or 0
 * if the model has not exactly one graph. */
static size_t raw_bytes(const uint8_t *buf, size_t len) {
    size_t i = 0, total = 0;
    int graphs = 0;
    struct field f, g, t;
    while (next_field(buf, len, &i, &f)) {
        if (f.num != F_MODEL_GRAPH || f.type != 2) continue;
        if (++graphs > 1) return 0;
        size_t j = 0;
        while (next_field(buf + f.pay, f.end - f.pay, &j, &g)) {
            if (g.num != F_GRAPH_INITIALIZER || g.type != 2) continue;
            const uint8_t *tp = buf + f.pay + g.pay;
            size_t k = 0, last = 0;
            while (next_field(tp, g.end - g.pay, &k, &t))
                if (t.num == F_TENSOR_RAW_DATA && t.type == 2) last = t.end - t.pay;
            total += last;
        }
    }
    return total;
}

int sgi_onnx_wire_lean(const uint8_t *buf, size_t len, struct sgi_onnx_lean *L) {
    memset(L, 0, sizeof *L);
    /* worth it when the weights are most of the file: else (weights in Constant nodes
     * or typed fields) the copy would cost about what it saves */
    const size_t raw = raw_bytes(buf, len);
    if (raw < len / 2) return 0;
    /* nothing grows and each raw_data loses its bytes: the copy fits without moving */
    sgi_buf_reserve(&L->msg, len - raw + 32);
    size_t i = 0;
    int graphs = 0, bad = L->msg.failed;
    struct field f;
    while (!bad && next_field(buf, len, &i, &f)) {
        if (f.num == F_MODEL_GRAPH && f.type == 2) {
            /* protobuf merges repeated singular messages: leave that to protobuf-c */
            if (++graphs > 1) break;
            const size_t at = open_sub(&L->msg, f.num);
            bad = !lean_graph(buf, f.pay, f.end, L);
            close_sub(&L->msg, at);
        } else {
            sgi_buf_put(&L->msg, buf + f.start, f.end - f.start);
        }
        bad |= L->msg.failed;
    }
    const int ok = !bad && i == len && graphs == 1;
    if (!ok) sgi_onnx_lean_free(L);
    return ok;
}

void sgi_onnx_lean_free(struct sgi_onnx_lean *L) {
    sgi_buf_free(&L->msg);
    free(L->raw);
    memset(L, 0, sizeof *L);
}
