/* Checkpoints of the language model (lm.h) as Hugging Face style folders:
 *
 *   DIR/config.json        {"model_type": "ptb-gpt", "vocab_size": 257, "max_seq": 256,
 *                           "layers": 4, "heads": 4, "channels": 128, "torch_dtype": "float32"}
 *                          (keys sorted, written by jansson: the same model gives the same bytes)
 *   DIR/model.safetensors  one F32 tensor per parameter tensor and layer: "wte", "wpe",
 *                          "lnfw", "lnfb" and "h.<layer>.<name>" for the per-layer ones
 *                          ("h.0.qkvw" of shape (3C, C) ...), names and layout of lm.h
 *
 * Reading also takes a sharded checkpoint (model.safetensors.index.json) and BF16 or F16
 * tensors (converted to float). A checkpoint that is missing, partial or inconsistent (a config
 * value out of range, a tensor missing, of another shape or an unknown one) is refused with a
 * message that names the problem: checkpoints come from agents and are not trusted. */
#ifndef PTB_LM_CKPT_H
#define PTB_LM_CKPT_H

#include "lm.h"

/* Write m to dir (created if missing; files replaced atomically). meta_kv (NULL, or key, value,
 * ..., NULL) goes to the safetensors metadata. */
int lm_ckpt_save(lm_model *m, const char *dir, const char *const *meta_kv, ptb_errbuf *eb);

/* Read config.json of dir into *c: PTB_ENOTFOUND (no such file), PTB_ECORRUPT (not JSON, a key
 * missing or of the wrong type, values lm_config_check refuses, another model_type). */
int lm_ckpt_config(const char *dir, lm_config *c, ptb_errbuf *eb);

/* A model with the config and weights of dir (caller frees with lm_model_free). */
int lm_ckpt_load(const char *dir, lm_model **out, ptb_errbuf *eb);

#endif
