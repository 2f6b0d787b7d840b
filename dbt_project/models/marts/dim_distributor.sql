select distributor_code, distributor_name, tier, region, province, city
from {{ ref('stg_dms__distributors') }}
