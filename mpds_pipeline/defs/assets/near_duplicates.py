"""``near_duplicates``: every verified poster's near-duplicate group (pHash, dHash, title
and year), which the export writes as ``duplicate_group``, the LoRA draw uses to take
one poster per group, and the benchmark split uses to stay leak-free."""

from pathlib import Path

import pandas as pd
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from ...curate.near_duplicates import DEFAULT_DHASH_THRESHOLD, DEFAULT_PHASH_THRESHOLD, DEFAULT_SECOND_OPINION
from ..resources import DataDirResource
from .captions import vision_prompts
from .curation import CURATE_GROUP, movies, poster_images
from .metadata import bar_chart, preview_table, tabulate


class NearDuplicatesConfig(Config):
    phash_threshold: int = Field(
        DEFAULT_PHASH_THRESHOLD, description="bits of 64 within which two pHashes are candidates (docs: measurements)"
    )
    dhash_threshold: int = Field(
        DEFAULT_DHASH_THRESHOLD, description="dHash bits within which two posters are candidates"
    )
    second_opinion: int = Field(
        DEFAULT_SECOND_OPINION, description="a candidate is kept when the other hash is within this many bits"
    )


@asset(group_name=CURATE_GROUP, deps=[movies, poster_images, vision_prompts], kinds={"python", "parquet"})
def near_duplicates(
    context: AssetExecutionContext, config: NearDuplicatesConfig, data_dir: DataDirResource
) -> MaterializeResult:
    """Groups of near-duplicate posters (re-releases, regional variants, DVD covers of one
    poster): pHash or dHash candidates within their thresholds, kept when the other hash
    does not object or, where the two disagree, by the same title and year. One row per verified poster: its group (the
    representative's id), its distance to the representative, the group's size. Hashes
    come from captioning (where each poster is decoded); a poster without one is hashed here."""
    from ...curate.near_duplicates import verified_posters, write_near_duplicates

    layout = data_dir.layout
    result = write_near_duplicates(
        verified_posters(layout.poster_images_root),
        layout.poster_hashes_file,
        movies_file=layout.movies_file,
        out_file=layout.near_duplicates_file,
        threshold=config.phash_threshold,
        dhash_threshold=config.dhash_threshold,
        second_opinion=config.second_opinion,
        log=context.log.info,
    )
    table = result.grouping.table
    dup = table[table["group_size"] > 1].sort_values(["group", "distance"])
    histogram = result.grouping.group_size_histogram()
    return MaterializeResult(
        metadata=tabulate(
            {
                **result.metadata(),
                "group_sizes": bar_chart(histogram, "group size", "groups"),
                "duplicate_groups_preview": preview_table(dup, limit=50),
                "path": MetadataValue.path(str(layout.near_duplicates_file)),
            }
        )
    )


def with_duplicate_groups(extra, near_duplicates_file):
    """The export's extra poster columns (an Arrow table, a DataFrame or None) plus
    ``duplicate_group`` (when near_duplicates ran), as an Arrow table: compact at 400k rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not Path(near_duplicates_file).is_file():
        return extra
    groups = pq.read_table(near_duplicates_file, columns=["id", "group"]).rename_columns(["id", "duplicate_group"])
    if groups.num_rows == 0:
        return extra
    if extra is None:
        return groups
    if isinstance(extra, pd.DataFrame):
        extra = pa.Table.from_pandas(extra, preserve_index=False)
    return extra.join(groups, keys="id", join_type="left outer")
