"""Province outlines shipped with the project, so maps render with no tile server or CDN.

`provinces()` loads `assets/china_provinces.geojson` (see `assets/README.md` for its
source and licence). Running this module regenerates that file from ECharts' encoded
`china.json`: `python -m bclake.dashboards.geometry path/to/echarts/map/json/china.json`.
"""

from __future__ import annotations

import itertools
import json
import sys
from functools import cache
from pathlib import Path

ASSET = Path(__file__).parent / "assets" / "china_provinces.geojson"

Ring = list[list[float]]


@cache
def provinces() -> dict:
    """The province FeatureCollection (property `name` matches `dim_geo.province`)."""
    return json.loads(ASSET.read_text(encoding="utf-8"))


def _signed_area(ring: Ring) -> float:
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring)) / 2


def _wind(ring: Ring, exterior: bool) -> Ring:
    """d3-geo (Vega) reads clockwise rings as exteriors; the other way round fills the globe."""
    clockwise = _signed_area(ring) < 0
    return ring if clockwise == exterior else ring[::-1]


def _decode_ring(encoded: str, offset: list[int], scale: float) -> Ring:
    """ECharts' zigzag delta encoding: two characters per point, offsets from the previous."""
    points: Ring = []
    x_prev, y_prev = offset
    for i in range(0, len(encoded) - 1, 2):
        x, y = ord(encoded[i]) - 64, ord(encoded[i + 1]) - 64
        x_prev += (x >> 1) ^ -(x & 1)
        y_prev += (y >> 1) ^ -(y & 1)
        point = [round(x_prev / scale, 2), round(y_prev / scale, 2)]
        if not points or point != points[-1]:
            points.append(point)
    if points and points[0] != points[-1]:
        points.append(points[0])
    return points


MIN_AREA = 0.001  # square degrees (~10 km²): islets below this vanish at province scale


def _polygon(rings: list[str], offsets: list, scale: float) -> list[Ring]:
    """Rings wound for d3-geo; islets that rounding would collapse are dropped, because a
    degenerate ring's winding is ambiguous and d3 may fill the whole sphere with it."""
    decoded = [_decode_ring(r, o, scale) for r, o in zip(rings, offsets, strict=True)]
    kept = [r for r in decoded if len(r) >= 4 and abs(_signed_area(r)) >= MIN_AREA]
    if not kept or kept[0] is not decoded[0]:
        return []  # the exterior itself was dropped: so are its holes
    return [_wind(r, i == 0) for i, r in enumerate(kept)]


def decode_echarts(encoded: dict) -> dict:
    """A plain GeoJSON FeatureCollection from ECharts' UTF-8 encoded map file."""
    scale = encoded.get("UTF8Scale", 1024)
    features = []
    for feature in encoded["features"]:
        geometry = feature["geometry"]
        if geometry["type"] == "Polygon":
            coordinates = _polygon(geometry["coordinates"], geometry["encodeOffsets"], scale)
        else:
            polygons = (
                _polygon(p, o, scale)
                for p, o in zip(geometry["coordinates"], geometry["encodeOffsets"], strict=True)
            )
            coordinates = [p for p in polygons if p]
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "adcode": feature["properties"]["id"],
                    "name": feature["properties"]["name"],
                },
                "geometry": {"type": geometry["type"], "coordinates": coordinates},
            }
        )
    return {"type": "FeatureCollection", "features": features}


if __name__ == "__main__":
    source = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    ASSET.write_text(
        json.dumps(decode_echarts(source), ensure_ascii=False, separators=(",", ":")),
        encoding="utf-8",
    )
    print(f"wrote {ASSET} ({ASSET.stat().st_size:,} bytes)")
