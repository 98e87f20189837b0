"""Tiny random-weight checkpoints of the real model classes, saved the way the hub holds them
(`save_pretrained` of the model and its processor), so tests load them through colretrieve's
own loading path. Tokenizers are trained here on a few sentences: nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

CORPUS = ["the quick brown fox jumps over the lazy dog", "Describe the image. Question: Query: what is",
          "principal components variances barplot table census arrests form board"]


def _bpe(specials: list[str], byte_level: bool, unk: str | None) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE(unk_token=unk))
    if byte_level:
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials)
    tokenizer.train_from_iterator(CORPUS, trainer)
    return tokenizer


def _save(model: torch.nn.Module, processor, folder: Path) -> Path:
    torch.manual_seed(0)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def colpali(folder: Path) -> Path:
    """PaliGemma with a 64 x 64 image in 8-pixel patches: an 8 x 8 grid, 16-d vectors."""
    from transformers import (
        ColPaliConfig,
        ColPaliForRetrieval,
        ColPaliProcessor,
        GemmaTokenizer,
        PaliGemmaConfig,
        SiglipImageProcessor,
    )

    tokenizer = GemmaTokenizer(tokenizer_object=_bpe(["<pad>", "<eos>", "<bos>", "<unk>"], False, "<unk>"),
                               bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>")
    processor = ColPaliProcessor(image_processor=SiglipImageProcessor(size={"height": 64, "width": 64},
                                                                      image_seq_length=64),
                                 tokenizer=tokenizer)
    vocab = len(processor.tokenizer)
    vlm = PaliGemmaConfig(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                           num_attention_heads=2, image_size=64, patch_size=8, projection_dim=32),
        text_config=dict(model_type="gemma", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=16, vocab_size=vocab),
        image_token_index=processor.image_token_id, projection_dim=32, hidden_size=32, vocab_size=vocab)
    torch.manual_seed(0)
    return _save(ColPaliForRetrieval(ColPaliConfig(vlm_config=vlm, embedding_dim=16)).eval(), processor, folder)


def colqwen2(folder: Path, version: str = "2") -> Path:
    """Qwen2-VL (or Qwen2.5-VL, `version` "2.5": ColQwen2.5 checkpoints are ColQwen2 ones over
    it) with 14-pixel patches merged 2 x 2, pages scaled to 4-16 merged patches."""
    from transformers import (
        ColQwen2Config,
        ColQwen2ForRetrieval,
        ColQwen2Processor,
        Qwen2_5_VLConfig,
        Qwen2Tokenizer,
        Qwen2VLConfig,
        Qwen2VLImageProcessor,
    )

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>"]
    tokenizer = Qwen2Tokenizer(tokenizer_object=_bpe(specials, True, None), pad_token="<|endoftext|>",
                               eos_token="<|im_end|>", unk_token=None)
    processor = ColQwen2Processor(
        image_processor=Qwen2VLImageProcessor(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 16, patch_size=14,
                                              merge_size=2, temporal_patch_size=2),
        tokenizer=tokenizer)
    text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                num_key_value_heads=1, vocab_size=len(tokenizer), bos_token_id=None, eos_token_id=None,
                rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]})
    if version == "2.5":  # windowed attention in the vision tower, one full-attention block
        config_class, vision = Qwen2_5_VLConfig, dict(
            depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32, patch_size=14,
            spatial_merge_size=2, temporal_patch_size=2, in_channels=3, window_size=56, fullatt_block_indexes=[1])
    else:
        config_class, vision = Qwen2VLConfig, dict(depth=1, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2,
                                                   patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
                                                   in_chans=3)
    vlm = config_class(
        text_config={"model_type": f"qwen{version.replace('.', '_')}_vl_text", **text}, vision_config=vision,
        image_token_id=processor.image_token_id,
        vision_start_token_id=tokenizer.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tokenizer.convert_tokens_to_ids("<|vision_end|>"),
        bos_token_id=None, eos_token_id=None)
    torch.manual_seed(0)
    return _save(ColQwen2ForRetrieval(ColQwen2Config(vlm_config=vlm, embedding_dim=16)).eval(), processor, folder)


def colqwen2_5(folder: Path) -> Path:
    return colqwen2(folder, version="2.5")


def colmodernvbert(folder: Path) -> Path:
    """ModernVBert: 32-pixel tiles of 2 x 2 tokens (pixel shuffle 2), pages split into up to 2 x 2 tiles."""
    from transformers import (
        ColModernVBertConfig,
        ColModernVBertForRetrieval,
        ColModernVBertProcessor,
        Idefics3ImageProcessorPil,
        ModernVBertConfig,
        PreTrainedTokenizerFast,
    )

    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<pad>", "<unk>", "<fake_token_around_image>", "<image>",
                "<end_of_utterance>", "<global-img>"]
    specials += [f"<row_{i + 1}_col_{j + 1}>" for i in range(6) for j in range(6)]
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=_bpe(specials, True, None), bos_token="<|begin_of_text|>",
                                        eos_token="<|end_of_text|>", pad_token="<pad>")
    processor = ColModernVBertProcessor(
        image_processor=Idefics3ImageProcessorPil(size={"longest_edge": 64}, max_image_size={"longest_edge": 32},
                                                  do_image_splitting=True),
        tokenizer=tokenizer, image_seq_len=4)
    vlm = ModernVBertConfig(
        text_config=dict(model_type="modernbert", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id),
        vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64,
                           num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8),
        image_token_id=processor.image_token_id, pixel_shuffle_factor=2)
    torch.manual_seed(0)
    model = ColModernVBertForRetrieval(ColModernVBertConfig(vlm_config=vlm, embedding_dim=16)).eval()
    return _save(model, processor, folder)


#: The retrieval template NeoMME checkpoints carry: `<query>` text `<mask>` x 10, or `<doc>` and the
#: text or one `<img>` (the processor expands it to the page's patch rows).
NEOMME_TEMPLATE = (
    "{%- set doc = namespace(text='', images=0) -%}"
    "{%- for message in messages -%}"
    "{%- set items = [{'type': 'text', 'text': message.content}] if message.content is string else message.content -%}"
    "{%- for item in items -%}"
    "{%- if item.type == 'text' -%}{%- set doc.text = doc.text + item.text -%}"
    "{%- else -%}{%- set doc.images = doc.images + 1 -%}{%- endif -%}"
    "{%- endfor -%}{%- endfor -%}"
    "{%- set content = image_token if doc.images else doc.text -%}"
    "{%- if task == 'query' -%}{{- query_token + content + mask_token * 10 -}}"
    "{%- else -%}{{- document_token + content -}}{%- endif -%}")


def neomme(folder: Path) -> Path:
    """NeoMME: raw 8-pixel patches of pages scaled to a 48-pixel longest side (6 x 5 on A4),
    each row closed by `<row>`. Its image processor needs torchvision (no PIL version): without
    it only the model and tokenizer are saved, and loading the folder is an error."""
    from transformers import NeoMMEConfig, NeoMMEForRetrieval, NeoMMEProcessor, PreTrainedTokenizerFast
    from transformers.utils import is_torchvision_available

    markers = {"document_token": "<doc>", "image_token": "<img>", "query_token": "<query>", "row_token": "<row>"}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_bpe(["<pad>", "<eos>", "<unk>", "<mask>", *markers.values()], True, None),
        pad_token="<pad>", eos_token="<eos>", unk_token="<unk>", mask_token="<mask>", extra_special_tokens=markers)
    processor = tokenizer
    if is_torchvision_available():
        from transformers import NeoMMEImageProcessor

        processor = NeoMMEProcessor(image_processor=NeoMMEImageProcessor(patch_size=8, max_side=48),
                                    tokenizer=tokenizer, chat_template=NEOMME_TEMPLATE)
    config = NeoMMEConfig(vocab_size=len(tokenizer), embedding_rank=16, hidden_size=32, intermediate_size=64,
                          num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                          patch_size=8, embedding_dim=16, pad_token_id=tokenizer.pad_token_id,
                          document_token_id=tokenizer.document_token_id, image_token_id=tokenizer.image_token_id)
    torch.manual_seed(0)
    model = NeoMMEForRetrieval(config).eval()
    with torch.no_grad():  # random where init zeroes (residual branches, biases): else no token sees another
        for weight in model.parameters():
            if not weight.any():
                weight.normal_(std=0.2)
    return _save(model, processor, folder)


def clip(folder: Path) -> Path:
    """CLIP with a 32 x 32 image and 24-d projections."""
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizer,
    )

    tokenizer = CLIPTokenizer(tokenizer_object=_bpe(["<|startoftext|>", "<|endoftext|>"], True, "<|endoftext|>"),
                              bos_token="<|startoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                              unk_token="<|endoftext|>")
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                                 crop_size={"height": 32, "width": 32}),
                              tokenizer=tokenizer)
    config = CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         vocab_size=len(tokenizer), max_position_embeddings=64, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=24)
    torch.manual_seed(0)
    return _save(CLIPModel(config).eval(), processor, folder)


def siglip(folder: Path) -> Path:
    """SigLIP with a 32 x 32 image; text padded to 16 tokens as SigLIP is."""
    from transformers import (
        GemmaTokenizer,
        SiglipConfig,
        SiglipImageProcessor,
        SiglipModel,
        SiglipProcessor,
    )

    tokenizer = GemmaTokenizer(tokenizer_object=_bpe(["<pad>", "</s>", "<unk>"], False, "<unk>"), pad_token="<pad>",
                               eos_token="</s>", unk_token="<unk>", bos_token="<unk>", model_max_length=16)
    processor = SiglipProcessor(image_processor=SiglipImageProcessor(size={"height": 32, "width": 32}),
                                tokenizer=tokenizer)
    config = SiglipConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         vocab_size=len(tokenizer), max_position_embeddings=16),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8))
    torch.manual_seed(0)
    return _save(SiglipModel(config).eval(), processor, folder)


def colbert(folder: Path, backbone: str = "bert") -> Path:
    """A PyLate-style ColBERT saved by sentence-transformers: a BERT with WordPiece (or, with
    `backbone` "modernbert", a ModernBERT with byte-level BPE, as GTE-ModernColBERT), a 32 -> 16
    projection, [Q]/[D] prompts, [MASK] query expansion to 16 tokens, a punctuation skiplist,
    40-token documents (so a page is read in several windows)."""
    import string

    from sentence_transformers import MultiVectorEncoder
    from sentence_transformers.base.modules import Dense, Normalize, Transformer
    from sentence_transformers.multi_vector_encoder.modules import MultiVectorMask
    from tokenizers import decoders, normalizers, processors
    from transformers import (
        BertConfig,
        BertModel,
        BertTokenizerFast,
        ModernBertConfig,
        ModernBertModel,
        PreTrainedTokenizerFast,
    )

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    if backbone == "bert":
        trained = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        trained.normalizer = normalizers.BertNormalizer(lowercase=True)
        trained.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = trainers.WordPieceTrainer(vocab_size=300, special_tokens=[*specials, "[Q]", "[D]"])
    else:
        trained = Tokenizer(models.BPE())
        trained.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True)
        trained.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    trained.train_from_iterator([*CORPUS, string.punctuation], trainer)
    trained.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", trained.token_to_id("[CLS]")), ("[SEP]", trained.token_to_id("[SEP]"))])
    names = dict(unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]", mask_token="[MASK]")
    torch.manual_seed(0)
    sizes = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                 max_position_embeddings=64)
    if backbone == "bert":
        tokenizer = BertTokenizerFast(tokenizer_object=trained, **names)
        model = BertModel(BertConfig(vocab_size=len(tokenizer), **sizes))
    else:
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=trained, **names)
        tokenizer.add_tokens(["[Q] ", "[D] "])  # as PyLate adds its prefixes to a tokenizer without them
        model = ModernBertModel(ModernBertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                                 **sizes))
    model.save_pretrained(folder / "backbone")
    tokenizer.save_pretrained(folder / "backbone")
    modules = [Transformer(str(folder / "backbone"), query_length=16, document_length=40,
                           query_expansion={"strategy": "fixed", "attend": False, "length": 16}),
               Dense(32, 16, bias=False, activation_function=torch.nn.Identity(), module_input_name="token_embeddings"),
               MultiVectorMask(skiplist_words=list(string.punctuation)),
               Normalize(module_input_name="token_embeddings")]
    encoder = MultiVectorEncoder(modules=modules, prompts={"query": "[Q] ", "document": "[D] "}, device="cpu")
    encoder.save(str(folder / "colbert"))
    return folder / "colbert"
