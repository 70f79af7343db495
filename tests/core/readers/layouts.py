"""Files written in the documented layouts of products with no real sample here (JAXA L3
SMC, SMAP L3, MCD43A3, MOD09, GLDAS Noah), with hand-set values at known pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_jaxa(folder: Path, date: str = "20150401", res_deg: float = 0.25) -> tuple[Path, dict]:
    """GW1AM2 L3 SMC: 'Geophysical Data' int16 (lines, pixels, 1), SCALE FACTOR 0.1 (%)."""
    import h5py

    h, w = int(180 / res_deg), int(360 / res_deg)
    raw = np.full((h, w, 1), -32767, dtype=np.int16)
    # 35.125 N, 105.125 E -> line (90 - 35.125)/0.25 = 219, pixel (105.125 + 180)/0.25 = 1140
    raw[219, 1140, 0] = 253  # 25.3 % -> 0.253 m3/m3
    raw[0, 0, 0] = 100  # NW corner cell: 89.875 N, 179.875 W
    raw[10, 10, 0] = -32768
    code = "L" if res_deg == 0.25 else "H"
    p = folder / f"GW1AM2_{date}_01D_EQMD_L3SGSMC{code}G3300300.h5"
    with h5py.File(p, "w") as f:
        d = f.create_dataset("Geophysical Data", data=raw)
        d.attrs["SCALE FACTOR"] = np.float32(0.1)
        d.attrs["UNIT"] = "%"
    return p, {"line": 219, "pixel": 1140, "value": 0.253}


def write_smap(folder: Path, date: str = "20190601", km: int = 36) -> tuple[Path, dict]:
    """SPL3SMP(_E): AM and PM groups, soil_moisture(_pm) float32 -9999, retrieval_qual_flag(_pm)."""
    import h5py

    shape = (406, 964) if km == 36 else (1624, 3856)
    am = np.full(shape, -9999.0, dtype=np.float32)
    pm = np.full(shape, -9999.0, dtype=np.float32)
    qa = np.zeros(shape, dtype=np.uint16)
    am[100, 700] = 0.21
    am[100, 701] = 0.33
    qa[100, 701] = 1  # not recommended
    pm[100, 700] = 0.25
    tag = "SMAP_L3_SM_P_E" if km == 9 else "SMAP_L3_SM_P"
    p = folder / f"{tag}_{date}_R18290_001.h5"
    with h5py.File(p, "w") as f:
        g = f.create_group("Soil_Moisture_Retrieval_Data_AM")
        d = g.create_dataset("soil_moisture", data=am)
        d.attrs["_FillValue"] = np.float32(-9999.0)
        d.attrs["units"] = "cm**3/cm**3"
        g.create_dataset("retrieval_qual_flag", data=qa)
        g = f.create_group("Soil_Moisture_Retrieval_Data_PM")
        d = g.create_dataset("soil_moisture_pm", data=pm)
        d.attrs["_FillValue"] = np.float32(-9999.0)
        g.create_dataset("retrieval_qual_flag_pm", data=np.zeros(shape, dtype=np.uint16))
    return p, {"row": 100, "col": 700}


def write_mcd43a3(folder: Path, date: str = "A2019152", tile: str = "h25v05", n: int = 40) -> Path:
    """MCD43A3 fields as HDF5 datasets: WSA/BSA int16 x 0.001, fill 32767, QA 0/1/255."""
    import h5py

    wsa = np.full((n, n), 200, dtype=np.int16)
    bsa = np.full((n, n), 150, dtype=np.int16)
    qa = np.zeros((n, n), dtype=np.uint8)
    wsa[0, 0] = 32767
    qa[1, 1] = 1
    qa[2, 2] = 255
    p = folder / f"MCD43A3.{date}.{tile}.061.2019161000000.h5"
    with h5py.File(p, "w") as f:
        g = f.create_group("MOD_Grid_BRDF")
        for name, arr in (("Albedo_WSA_shortwave", wsa), ("Albedo_BSA_shortwave", bsa),
                          ("BRDF_Albedo_Band_Mandatory_Quality_shortwave", qa)):
            d = g.create_dataset(name, data=arr)
            d.attrs["scale_factor"] = 0.001
            d.attrs["_FillValue"] = 32767 if arr.dtype == np.int16 else 255
    return p


def write_mod09(folder: Path, date: str = "A2019152", tile: str = "h25v05", n: int = 40, a1: bool = True) -> Path:
    """MOD09A1 (or MOD09GA) reflectance bands int16 x 1e-4, fill -28672, state bits."""
    import h5py

    refl = {1: 500, 2: 3000, 3: 300, 4: 700, 5: 3200, 6: 2500, 7: 1500}
    state = np.zeros((n, n), dtype=np.uint16)
    state[0, 1] = 0b01  # cloudy
    state[0, 2] = 0b100  # cloud shadow
    state[0, 3] = 0b11  # not set: assumed clear
    name = "MOD09A1" if a1 else "MOD09GA"
    p = folder / f"{name}.{date}.{tile}.061.2019161000000.h5"
    with h5py.File(p, "w") as f:
        g = f.create_group("MOD_Grid_500m_Surface_Reflectance")
        for b, v in refl.items():
            arr = np.full((n, n), v, dtype=np.int16)
            arr[5, 5] = -28672
            key = f"sur_refl_b{b:02d}" if a1 else f"sur_refl_b{b:02d}_1"
            d = g.create_dataset(key, data=arr)
            d.attrs["scale_factor"] = 0.0001
        if a1:
            g.create_dataset("sur_refl_state_500m", data=state)
        else:
            g.create_dataset("state_1km_1", data=state[::2, ::2])
    return p, refl


def write_gldas(folder: Path, stamp: str = "A20190601.0300") -> Path:
    """GLDAS_NOAH025_3H netCDF4: AvgSurfT_inst (time, lat, lon) K, lat ascending, fill -9999."""
    import netCDF4

    p = folder / f"GLDAS_NOAH025_3H.{stamp}.021.nc4"
    with netCDF4.Dataset(p, "w") as f:
        f.createDimension("time", 1)
        f.createDimension("lat", 8)
        f.createDimension("lon", 12)
        t = f.createVariable("time", "f8", ("time",))
        t.units = "days since 2019-06-01 00:00:00"
        t[:] = [0.125]
        la = f.createVariable("lat", "f4", ("lat",))
        la.units = "degrees_north"
        la[:] = 30.125 + 0.25 * np.arange(8)
        lo = f.createVariable("lon", "f4", ("lon",))
        lo.units = "degrees_east"
        lo[:] = 100.125 + 0.25 * np.arange(12)
        v = f.createVariable("AvgSurfT_inst", "f4", ("time", "lat", "lon"), fill_value=-9999.0)
        v.units = "K"
        data = np.full((1, 8, 12), 290.0, dtype=np.float32)
        data[0, 0, 0] = 300.0  # southernmost row, westernmost column
        data[0, 7, 11] = -9999.0
        v[:] = data
    return p
