-- One row per day 2020-2030 with the Chinese calendar: public holidays on their lunar
-- dates, make-up working days and the 618 / Double 11 shopping festivals.
with days as (
    {{ dbt.date_spine('day', "cast('2020-01-01' as date)", "cast('2031-01-01' as date)") }}
)

select
    cast(d.date_day as date) as date_day,
    cast({{ dbt.date_trunc('week', 'd.date_day') }} as date) as week_start,
    cast({{ dbt.date_trunc('month', 'd.date_day') }} as date) as month_start,
    cast({{ dbt.date_trunc('quarter', 'd.date_day') }} as date) as quarter_start,
    extract(year from d.date_day) as year,
    extract(month from d.date_day) as month,
    c.holiday,
    c.holiday_zh,
    c.festival,
    c.holiday is not null as is_holiday,
    -- outside the calendar package's years, weekdays are assumed to be working days
    coalesce(c.is_workday, extract(isodow from d.date_day) < 6) as is_workday,
    c.date_day is not null as calendar_known
from days as d
left join {{ ref('cn_calendar') }} as c on cast(d.date_day as date) = c.date_day
