"""HTTP routes: the one REST call the load generator makes."""

from django.urls import path

from chat.views import CreateChatView

urlpatterns = [path("chats/", CreateChatView.as_view())]
