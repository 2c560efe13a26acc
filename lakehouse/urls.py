from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "Lakehouse POC"
admin.site.site_title = "Lakehouse POC"
admin.site.index_title = "Multi-tenant e-commerce data"
# The lists are wide; the breadcrumbs and the index lead to every table.
admin.site.enable_nav_sidebar = False
# The index leads to the pipeline page too.
admin.site.index_template = "admin/lakehouse_index.html"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    # Staff only, read-only: the state of the whole pipeline on one page (the app's URLs).
    path("admin/pipeline/", include("core.pipeline.urls")),
    path("admin/", admin.site.urls),
]
