"""The pipeline page's URLs, under the admin (lakehouse/urls.py mounts them at
/admin/pipeline/): staff only, like the admin itself."""

from django.contrib import admin
from django.urls import path

from core.pipeline.views import pipeline_page, pipeline_part

urlpatterns = [
    path("", admin.site.admin_view(pipeline_page), name="pipeline"),
    path("<str:part>/", admin.site.admin_view(pipeline_part), name="pipeline-part"),
]
