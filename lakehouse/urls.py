from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from core.pipeline.views import pipeline_page, pipeline_part

admin.site.site_header = "Lakehouse POC"
admin.site.site_title = "Lakehouse POC"
admin.site.index_title = "Multi-tenant e-commerce data"
# The lists are wide; the breadcrumbs and the index lead to every table.
admin.site.enable_nav_sidebar = False
# The index leads to the pipeline page too.
admin.site.index_template = "admin/lakehouse_index.html"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    # Staff only, read-only: the state of the whole pipeline on one page.
    path("admin/pipeline/", admin.site.admin_view(pipeline_page), name="pipeline"),
    path("admin/pipeline/<str:part>/", admin.site.admin_view(pipeline_part), name="pipeline-part"),
    path("admin/", admin.site.urls),
]
