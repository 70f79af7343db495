"""Outputs of a validation: the station point layer, the HTML report and its PNG plots.

Plots use matplotlib's object API with the Agg canvas (``Figure`` + ``FigureCanvasAgg``),
never ``pyplot``'s global state, so they are safe in a Processing background thread. Every
file is written under a temporary name and renamed when complete; the HTML comes last.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from osgeo import ogr, osr

from ..errors import SsmError
from .matching import CLEAR, CLOUDY
from .validate import ValidationResult

ogr.UseExceptions()
log = logging.getLogger(__name__)

#: per-product metrics in the layer (with CIs for the "all" subset)
LAYER_METRICS = ("n_obs", "R", "p_R", "BIAS", "RMSD", "urmsd")
LAYER_CIS = ("R_ci_lower", "R_ci_upper", "BIAS_ci_lower", "BIAS_ci_upper", "urmsd_ci_lower", "urmsd_ci_upper")
LAYER_SUBSET_METRICS = ("n_obs", "R", "BIAS", "RMSD", "urmsd")
#: the field the layer's style (styles/validation_stations.qml) colours by
STYLE_FIELD = "p1_urmsd"
#: at most this many pairs are drawn per scatter plot (a fixed random subset)
MAX_SCATTER = 20000


# ---------------------------------------------------------------------------------------
# the station layer
# ---------------------------------------------------------------------------------------


def layer_fields(result: ValidationResult) -> list[tuple[str, str]]:
    """``(name, type)`` of the layer's fields; type is ``str``, ``int`` or ``float``.

    Product ``k`` (1-based, in the order given) has fields ``p<k>_name``,
    ``p<k>_<metric>`` and, with flags, ``p<k>_clear_<metric>`` / ``p<k>_cloudy_<metric>``.
    """
    fields = [("station_id", "str"), ("network", "str"), ("depth_from", "float"), ("depth_to", "float"),
              ("station_days", "int")]
    for k, _ in enumerate(result.product_names, start=1):
        fields.append((f"p{k}_name", "str"))
        fields += [(f"p{k}_{m}", "int" if m == "n_obs" else "float") for m in LAYER_METRICS + LAYER_CIS]
        for s in result.comparison.subsets:
            if s != "all":
                fields += [(f"p{k}_{s}_{m}", "int" if m == "n_obs" else "float") for m in LAYER_SUBSET_METRICS]
    return fields


def _num(v) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


def layer_features(result: ValidationResult) -> Iterator[tuple[float, float, dict]]:
    """``(lon, lat, attributes)`` per station; NaN metrics are None (NULL)."""
    st = result.stations
    days = np.isfinite(result.reference).sum(axis=1)
    comp = result.comparison
    for i, sid in enumerate(st.ids):
        attrs: dict = {
            "station_id": sid,
            "network": st.network[i],
            "depth_from": _num(st.depth_from[i]),
            "depth_to": _num(st.depth_to[i]),
            "station_days": int(days[i]),
        }
        for k, p in enumerate(result.product_names, start=1):
            attrs[f"p{k}_name"] = p
            t = comp.metrics(p, "all")
            for m in LAYER_METRICS + LAYER_CIS:
                attrs[f"p{k}_{m}"] = int(t[m][i]) if m == "n_obs" else _num(t[m][i])
            for s in comp.subsets:
                if s == "all":
                    continue
                t = comp.metrics(p, s)
                for m in LAYER_SUBSET_METRICS:
                    attrs[f"p{k}_{s}_{m}"] = int(t[m][i]) if m == "n_obs" else _num(t[m][i])
        yield float(st.lon[i]), float(st.lat[i]), attrs


def write_station_layer(result: ValidationResult, path: str | Path, layer_name: str = "stations") -> Path:
    """The station layer (WGS84 points) as a GeoPackage, written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.part{os.getpid()}{path.suffix or '.gpkg'}")
    types = {"str": ogr.OFTString, "int": ogr.OFTInteger64, "float": ogr.OFTReal}
    try:
        ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp))
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(4326)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        lyr = ds.CreateLayer(layer_name, srs, ogr.wkbPoint)
        fields = layer_fields(result)
        for name, t in fields:
            lyr.CreateField(ogr.FieldDefn(name, types[t]))
        defn = lyr.GetLayerDefn()
        ds.StartTransaction()
        for lon, lat, attrs in layer_features(result):
            f = ogr.Feature(defn)
            for name, _ in fields:
                v = attrs.get(name)
                if v is None:
                    f.SetFieldNull(name)
                else:
                    f.SetField(name, v)
            g = ogr.Geometry(ogr.wkbPoint)
            g.AddPoint_2D(lon, lat)
            f.SetGeometry(g)
            lyr.CreateFeature(f)
        ds.CommitTransaction()
        ds = None
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# ---------------------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------------------


def _figure(w: float, h: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    tmp = path.with_name(f".{path.stem}.part{os.getpid()}.png")
    try:
        fig.savefig(str(tmp), format="png")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _panels(n: int) -> tuple[int, int]:
    cols = min(n, 3)
    return (n + cols - 1) // cols, cols


def plot_scatter(result: ValidationResult, path: Path) -> Path:
    """Product vs station for every matched pair, one panel per product (clear/cloudy coloured)."""
    names = result.product_names
    nr, nc = _panels(len(names))
    fig = _figure(4.2 * nc, 4.0 * nr)
    ref = result.reference
    allv = [ref[result.comparison.masks[p]] for p in names]
    allv += [result.products[p][result.comparison.masks[p]] for p in names]
    cat = np.concatenate([a for a in allv if a.size]) if any(a.size for a in allv) else np.array([0.0, 0.5])
    lo, hi = float(np.nanmin(cat)), float(np.nanmax(cat))
    pad = 0.02 * (hi - lo if hi > lo else 1.0)
    lo, hi = lo - pad, hi + pad
    for k, p in enumerate(names):
        ax = fig.add_subplot(nr, nc, k + 1)
        m = result.comparison.masks[p]
        x, y = ref[m], result.products[p][m]
        n_pairs = x.size
        cond = result.condition[m] if result.condition is not None else None
        counts = {c: int((cond == c).sum()) for c in (CLEAR, CLOUDY, -1)} if cond is not None else {}
        many = n_pairs > MAX_SCATTER
        if many:  # a fixed random subset keeps the plot readable and fast
            pick = np.sort(np.random.default_rng(0).choice(n_pairs, MAX_SCATTER, replace=False))
            x, y = x[pick], y[pick]
            cond = cond[pick] if cond is not None else None
        if cond is not None:
            for cls, col, lab in ((CLEAR, "#e6a100", "clear-sky"), (CLOUDY, "#3a6fb0", "cloudy"),
                                  (-1, "#999999", "unknown")):
                s = cond == cls
                if s.any():
                    ax.scatter(x[s], y[s], s=2 if many else 6, c=col, alpha=0.35 if many else 0.6, lw=0,
                               label=f"{lab} ({counts[cls]})", rasterized=True)
            ax.legend(loc="upper left", fontsize=7, markerscale=3, frameon=False)
        else:
            ax.scatter(x, y, s=2 if many else 6, c="#3a6fb0", alpha=0.35 if many else 0.6, lw=0, rasterized=True)
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_xlabel("station (m³/m³)")
        ax.set_ylabel(f"{p} (m³/m³)")
        a = result.comparison.average(p)
        ax.set_title(p, fontsize=10)
        shown = f" ({MAX_SCATTER} shown)" if many else ""
        ax.text(0.98, 0.02, f"n = {n_pairs}{shown}\nstations: {a['n_stations']}\nmean R = {a['R']:.3f}\n"
                f"mean ubRMSD = {a['urmsd']:.4f}\nmean bias = {a['BIAS']:+.4f}",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=7,
                bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
    fig.tight_layout()
    return _save(fig, path)


def best_and_worst(result: ValidationResult) -> tuple[int | None, int | None]:
    """Indices of the stations with the lowest and highest ubRMSD of the main product."""
    u = np.asarray(result.comparison.metrics(result.main)["urmsd"])
    ok = np.flatnonzero(np.isfinite(u))
    if ok.size == 0:
        return None, None
    return int(ok[np.argmin(u[ok])]), int(ok[np.argmax(u[ok])])


def plot_timeseries(result: ValidationResult, path: Path) -> Path:
    """Station and product series of the best and the worst station (main product's ubRMSD)."""
    best, worst = best_and_worst(result)
    fig = _figure(11, 6.4)
    days = np.array(result.dates, dtype="datetime64[D]")
    colors = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b"]
    for row, (label, i) in enumerate((("best", best), ("worst", worst))):
        ax = fig.add_subplot(2, 1, row + 1)
        if i is None:
            ax.text(0.5, 0.5, "no validated station", ha="center", transform=ax.transAxes)
            continue
        for k, p in enumerate(result.product_names):
            v = result.products[p][i]
            c = colors[k % len(colors)]
            ok = np.isfinite(v)
            # a thin line through the product's days, dots on the days used in the metrics
            ax.plot(days[ok], v[ok], "-", lw=0.8, color=c, alpha=0.8, label=p)
            m = result.comparison.masks[p][i]
            ax.plot(days[m], v[m], "o", ms=2.5, color=c)
        ax.plot(days, result.reference[i], "o", ms=3.2, mfc="white", mec="k", mew=0.8, label="station")
        t = result.comparison.metrics(result.main)
        ax.set_title(f"{label}: {result.stations.ids[i]} - {result.main}: ubRMSD {t['urmsd'][i]:.4f}, "
                     f"R {t['R'][i]:.3f}, bias {t['BIAS'][i]:+.4f}, n {int(t['n_obs'][i])}", fontsize=9,
                     loc="right")
        ax.set_ylabel("SSM (m³/m³)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.08), fontsize=7, ncol=len(result.products) + 1,
                  frameon=False, borderaxespad=0.0)
    fig.tight_layout()
    return _save(fig, path)


def plot_map(result: ValidationResult, path: Path) -> Path:
    """Stations coloured by ubRMSD, one panel per product (shared colour scale)."""
    names = result.product_names
    nr, nc = _panels(len(names))
    fig = _figure(4.4 * nc, 3.9 * nr)
    st = result.stations
    us = [np.asarray(result.comparison.metrics(p)["urmsd"]) for p in names]
    finite = np.concatenate([u[np.isfinite(u)] for u in us]) if any(np.isfinite(u).any() for u in us) else None
    vmin, vmax = (0.0, float(np.percentile(finite, 95))) if finite is not None and finite.size else (0.0, 0.1)
    vmax = vmax if vmax > 0 else 0.1
    padx = max(0.05, 0.05 * float(np.ptp(st.lon)))
    pady = max(0.05, 0.05 * float(np.ptp(st.lat)))
    for k, p in enumerate(names):
        ax = fig.add_subplot(nr, nc, k + 1)
        u = us[k]
        ok = np.isfinite(u)
        ax.scatter(st.lon[~ok], st.lat[~ok], s=14, facecolors="none", edgecolors="#888888", lw=0.7,
                   label=f"< min_obs ({int((~ok).sum())})")
        sc = ax.scatter(st.lon[ok], st.lat[ok], c=u[ok], s=22, cmap="viridis_r", vmin=vmin, vmax=vmax,
                        edgecolors="k", lw=0.3)
        fig.colorbar(sc, ax=ax, shrink=0.85, label="ubRMSD (m³/m³)")
        ax.set_xlim(st.lon.min() - padx, st.lon.max() + padx)
        ax.set_ylim(st.lat.min() - pady, st.lat.max() + pady)
        ax.set_xlabel("longitude (°)")
        ax.set_ylabel("latitude (°)")
        ax.set_title(p, fontsize=10)
        if (~ok).any():
            ax.legend(loc="lower left", fontsize=7, frameon=False)
    fig.tight_layout()
    return _save(fig, path)


# ---------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------

_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1200px; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #eef2f6; } td.l, th.l { text-align: left; }
.warn { background: #fff4e0; border-left: 4px solid #e6a100; padding: 0.4em 0.8em; font-size: 0.85em; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.4em 0; }
.small { font-size: 0.8em; color: #555; }
"""


def _f(v, fmt: str = ".4f") -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return html.escape(str(v))
    return "" if not np.isfinite(v) else format(v, fmt)


def _ci(t: dict, key: str, i: int, fmt: str) -> str:
    lo, hi = float(t[f"{key}_ci_lower"][i]), float(t[f"{key}_ci_upper"][i])
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return ""
    return f" <span class=small>[{format(lo, fmt)}, {format(hi, fmt)}]</span>"


def _average_table(result: ValidationResult) -> str:
    comp = result.comparison
    head = ("<tr><th class=l>product</th><th class=l>subset</th><th>stations</th><th>matched days</th>"
            "<th>R</th><th>bias</th><th>RMSD</th><th>ubRMSD</th><th>R (median)</th><th>bias (median)</th>"
            "<th>RMSD (median)</th><th>ubRMSD (median)</th></tr>")
    label = {"all": "all", "clear": "clear-sky", "cloudy": "cloudy"}
    rows = []
    for p in comp.products:
        for s in comp.subsets:
            a, md = comp.average(p, s, "mean"), comp.average(p, s, "median")
            rows.append(
                f"<tr><td class=l>{html.escape(p)}</td><td class=l>{label[s]}</td><td>{a['n_stations']}</td>"
                f"<td>{a['n_obs']}</td><td>{_f(a['R'], '.3f')}</td><td>{_f(a['BIAS'], '+.4f')}</td>"
                f"<td>{_f(a['RMSD'])}</td><td>{_f(a['urmsd'])}</td><td>{_f(md['R'], '.3f')}</td>"
                f"<td>{_f(md['BIAS'], '+.4f')}</td><td>{_f(md['RMSD'])}</td><td>{_f(md['urmsd'])}</td></tr>"
            )
    return f"<table>{head}{''.join(rows)}</table>"


def _station_table(result: ValidationResult) -> str:
    comp = result.comparison
    head = "<tr><th class=l>station</th><th class=l>network</th><th>lon</th><th>lat</th>"
    for p in comp.products:
        head += (f"<th>{html.escape(p)}<br>n</th><th>R [95% CI]</th><th>bias [95% CI]</th><th>RMSD</th>"
                 f"<th>ubRMSD [95% CI]</th>")
    head += "</tr>"
    st = result.stations
    order = np.argsort(np.nan_to_num(np.asarray(comp.metrics(result.main)["urmsd"]), nan=np.inf), kind="stable")
    rows = []
    for i in order:
        r = (f"<tr><td class=l>{html.escape(st.ids[i])}</td><td class=l>{html.escape(st.network[i])}</td>"
             f"<td>{st.lon[i]:.4f}</td><td>{st.lat[i]:.4f}</td>")
        for p in comp.products:
            t = comp.metrics(p)
            r += (f"<td>{int(t['n_obs'][i])}</td>"
                  f"<td>{_f(t['R'][i], '.3f')}{_ci(t, 'R', i, '.2f')}</td>"
                  f"<td>{_f(t['BIAS'][i], '+.4f')}{_ci(t, 'BIAS', i, '+.3f')}</td>"
                  f"<td>{_f(t['RMSD'][i])}</td>"
                  f"<td>{_f(t['urmsd'][i])}{_ci(t, 'urmsd', i, '.3f')}</td>")
        rows.append(r + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _depths(rng) -> str:
    return "any" if not rng else f"{rng[0]:g}-{rng[1]:g} m"


def write_report(
    result: ValidationResult, html_path: str | Path, table_path: str | Path | None = None, title: str | None = None
) -> dict[str, Path]:
    """Write the HTML report, its PNGs (``<stem>_scatter.png``, ``<stem>_timeseries.png``,
    ``<stem>_map.png``) and ``<stem>_summary.json`` (station averages) next to it. Returns
    the paths written, keyed ``html``, ``scatter``, ``timeseries``, ``map``, ``summary``.
    Without matplotlib the report has tables only (and says so)."""
    html_path = Path(html_path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    stem = html_path.stem
    out: dict[str, Path] = {}
    try:
        import matplotlib  # noqa: F401

        have_mpl = True
    except ImportError:
        have_mpl = False
        log.warning("matplotlib is not installed: the report has no plots")
    out["summary"] = write_summary_json(result, html_path.with_name(f"{stem}_summary.json"))
    if have_mpl:
        out["scatter"] = plot_scatter(result, html_path.with_name(f"{stem}_scatter.png"))
        out["timeseries"] = plot_timeseries(result, html_path.with_name(f"{stem}_timeseries.png"))
        out["map"] = plot_map(result, html_path.with_name(f"{stem}_map.png"))
    s = result.settings
    title = title or "Validation against in-situ stations"
    prods = "".join(f"<li><b>{html.escape(p)}</b>: <code>{html.escape(result.folders[p])}</code></li>"
                    for p in result.product_names)
    cond = ""
    if result.condition is not None:
        rule = ("SSM flags: 0 coarse observed and 1 seam-filled = clear-sky (LST observed); 2 LST gap-filled under "
                "cloud and 3 both = cloudy" if result.flag_kind == "ssm" else
                "LST flags / cloud mask: 0 = clear-sky, 1 = cloudy (gap-filled)")
        cond = (f"<li>sky condition from <code>{html.escape(str(s.get('flags')))}</code> ({rule}); other values "
                "and days without a flag file count in <i>all</i> only</li>")
    match = ("only days on which every product and the station have a value"
             if s.get("common_days") and len(result.products) > 1 else "days on which product and station both have a value")
    warn = "".join(f"<div class=warn>{html.escape(w)}</div>" for w in result.warnings)
    img = ""
    if have_mpl:
        img = (f"<h2>Product vs station</h2><img src='{out['scatter'].name}' alt='scatter plots'>"
               f"<h2>Metrics map</h2><img src='{out['map'].name}' alt='map of ubRMSD'>"
               f"<h2>Best and worst station</h2><img src='{out['timeseries'].name}' alt='time series'>")
    else:
        img = "<p class=warn>matplotlib is not installed: no plots.</p>"
    table_link = (f"<p>Every metric of every station and subset: <a href='{html.escape(Path(table_path).name)}'>"
                  f"{html.escape(Path(table_path).name)}</a></p>") if table_path else ""
    body = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<ul>
{prods}
<li>stations: <code>{html.escape(str(s.get('stations')))}</code> ({len(result.stations)} inside the rasters)</li>
<li>period: {s.get('start')} to {s.get('end')}; matched on {match}</li>
<li>product value: {'the pixel containing the station' if s.get('window', 1) == 1 else
                    f"mean of the valid pixels of a {s.get('window')} x {s.get('window')} window"};
    station value: daily mean of the accepted values (quality flags {html.escape(str(s.get('quality_flags') or 'any'))},
    sensor depths {html.escape(_depths(s.get('depth_range')))})</li>
{cond}
<li>a station enters the averages with at least min_obs = {s.get('min_obs')} matched days</li>
</ul>
{warn}
<h2>Station averages</h2>
<p class=small>bias = mean(product) - mean(station); ubRMSD = sqrt(RMSD² - bias²); m³/m³. Means and medians
over the stations with at least min_obs matched days (R over those where it is defined).</p>
{_average_table(result)}
{img}
<h2>Stations</h2>
<p class=small>Sorted by the ubRMSD of {html.escape(result.main)}; 95 % confidence intervals as pytesmo computes
them analytically (R: Fisher z; bias: Student t; ubRMSD: chi-square). Empty: fewer than min_obs days.</p>
{table_link}
{_station_table(result)}
<p class=small>Written {dt.date.today().isoformat()} by the Soil Moisture Downscaling plugin.</p>
</body></html>
"""
    tmp = html_path.with_name(f".{html_path.name}.part{os.getpid()}")
    try:
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, html_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    out["html"] = html_path
    return out


def write_summary_json(result: ValidationResult, path: str | Path) -> Path:
    """Station averages (mean and median, every product and subset), settings and warnings
    as JSON, written atomically (for scripts and the demo summary)."""
    import json

    path = Path(path)

    def clean(v):
        return None if isinstance(v, float) and not np.isfinite(v) else v

    doc = {
        "products": {p: result.folders[p] for p in result.product_names},
        "main": result.main,
        "n_stations": len(result.stations),
        "flag_kind": result.flag_kind,
        "settings": result.settings,
        "averages": [{k: clean(v) for k, v in r.items()} for r in result.comparison.average_rows()],
        "warnings": result.warnings,
    }
    tmp = path.with_name(f".{path.name}.part{os.getpid()}")
    try:
        tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def check_output_path(path: str | Path, what: str) -> Path:
    """An output path whose folder can be created (clear error otherwise)."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SsmError(f"{p}: cannot create the folder for the {what}: {exc}") from exc
    return p
