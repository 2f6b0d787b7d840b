-- Stores and distributors whose geography the channel model cannot trust, one row per
-- entity x issue, with the reason in Chinese and English. Nothing is dropped: the
-- entity stays in the store and distributor economics (a store without coordinates takes
-- its distributor's median distance); this table says what to fix in the DMS master.
-- Issues: missing_coordinates, outside_china (outside the bounding box of China,
-- 73-135.1 E, 18-53.6 N), far_from_city (more than channel_max_city_km from its city's
-- seat: a swapped or mistyped coordinate), unknown_distributor (a code the distributor
-- master lacks), city_not_in_reference (province + city not in the reference cities).
-- Points in the sea inside the box are found by bclake.ml.channel (province outlines).
with cities as (
    select
        province,
        city,
        lat,
        lon
    from {{ ref('geo_cities') }}
),

stores as (
    select
        s.store_code,
        s.store_name,
        s.province,
        s.city,
        s.lat,
        s.lon,
        s.distributor_code,
        d.distributor_code is not null as distributor_known,
        c.city is not null as city_known,
        s.lat between 18 and 53.6 and s.lon between 73 and 135.1 as in_china_box,
        {{ km_between('s.lat', 's.lon', 'c.lat', 'c.lon') }} as km_to_city
    from {{ ref('stg_dms__stores') }} as s
    left join {{ ref('stg_dms__distributors') }} as d on s.distributor_code = d.distributor_code
    left join cities as c on s.province = c.province and s.city = c.city
),

store_issues as (
    select
        'store' as entity_type,
        store_code as code,
        store_name as name,
        province,
        city,
        lat,
        lon,
        distributor_code,
        'missing_coordinates' as issue,
        '门店缺少经纬度, 配送距离按其经销商门店的中位距离估算' as reason_zh,
        'the store has no coordinates; its delivery distance is taken as its distributor''s '
        || 'median store distance' as reason_en
    from stores
    where lat is null or lon is null
    union all
    select
        'store' as entity_type,
        store_code as code,
        store_name as name,
        province,
        city,
        lat,
        lon,
        distributor_code,
        'outside_china' as issue,
        '门店坐标 (' || round(lat, 4) || ', ' || round(lon, 4) || ') 在中国范围之外' as reason_zh,
        'the store''s coordinates (' || round(lat, 4) || ', ' || round(lon, 4)
        || ') lie outside China' as reason_en
    from stores
    where not in_china_box
    union all
    select
        'store' as entity_type,
        store_code as code,
        store_name as name,
        province,
        city,
        lat,
        lon,
        distributor_code,
        'far_from_city' as issue,
        '门店距所在城市 ' || city || ' ' || cast(round(km_to_city) as integer) || ' 公里, 坐标可能有误' as reason_zh,
        'the store is ' || cast(round(km_to_city) as integer) || ' km from the seat of its city '
        || city || ': its coordinates may be wrong' as reason_en
    from stores
    where
        km_to_city > {{ var('channel_max_city_km') }}
        and in_china_box
    union all
    select
        'store' as entity_type,
        store_code as code,
        store_name as name,
        province,
        city,
        lat,
        lon,
        distributor_code,
        'unknown_distributor' as issue,
        '门店所属经销商 ' || distributor_code || ' 不在经销商主数据中' as reason_zh,
        'the store''s distributor ' || distributor_code || ' is not in the distributor master' as reason_en
    from stores
    where not distributor_known
    union all
    select
        'store' as entity_type,
        store_code as code,
        store_name as name,
        province,
        city,
        lat,
        lon,
        distributor_code,
        'city_not_in_reference' as issue,
        '城市 ' || province || ' ' || city || ' 不在参考城市表中' as reason_zh,
        'the city ' || province || ' ' || city || ' is not in the reference cities' as reason_en
    from stores
    where not city_known
),

distributor_issues as (
    select
        'distributor' as entity_type,
        d.distributor_code as code,
        d.distributor_name as name,
        d.province,
        d.city,
        cast(null as double) as lat,
        cast(null as double) as lon,
        d.distributor_code,
        'city_not_in_reference' as issue,
        '经销商所在城市 ' || d.province || ' ' || d.city || ' 不在参考城市表中, 无法计算距离'
            as reason_zh,
        'the distributor''s city ' || d.province || ' ' || d.city
        || ' is not in the reference cities: no distances' as reason_en
    from {{ ref('stg_dms__distributors') }} as d
    left join cities as c on d.province = c.province and d.city = c.city
    where c.city is null
)

select * from store_issues
union all
select * from distributor_issues
