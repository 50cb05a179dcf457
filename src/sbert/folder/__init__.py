"""Model folders in the sentence-transformers format: the spec, reading and writing."""

from __future__ import annotations

from sbert.folder.read import max_positions, parse_pooling_config, read_folder, read_model_config
from sbert.folder.spec import (
    FP32_FILE,
    INT8_FILE,
    INT8_TARGETS,
    INT8_WEIGHTS,
    MODEL_TYPE,
    MODULE_TYPES,
    POOLING_MODES,
    SIMILARITY_FNS,
    TOKENIZER_FILES,
    DenseConfig,
    FolderSpec,
    PoolingConfig,
    int8_file,
    int8_graph_kind,
    output_dimension,
    settings_problem,
)
from sbert.folder.write import FolderSettings, copy_tokenizer_files, write_folder_files

__all__ = [
    "FP32_FILE", "INT8_FILE", "INT8_TARGETS", "INT8_WEIGHTS", "MODEL_TYPE", "MODULE_TYPES",
    "POOLING_MODES", "SIMILARITY_FNS", "TOKENIZER_FILES", "DenseConfig", "FolderSettings",
    "FolderSpec", "PoolingConfig", "copy_tokenizer_files", "int8_file", "int8_graph_kind",
    "max_positions", "output_dimension", "parse_pooling_config", "read_folder", "read_model_config",
    "settings_problem", "write_folder_files",
]
