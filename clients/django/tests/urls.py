from django.urls import include, path

urlpatterns = [path("chat/", include("jetchat_django.urls"))]
