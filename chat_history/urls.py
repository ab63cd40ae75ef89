app_name = "chat_history"

urlpatterns: list = []
